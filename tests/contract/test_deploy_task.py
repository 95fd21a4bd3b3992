"""`task deploy:dry` prints every command `task deploy` runs, and they deploy the manifests:
a `kn service apply` per function with the image, env and scale flags of its manifest,
PingSources through kn, everything else through kubectl, in an order that works, and no
command or flag the CLIs lack. The tasks run through the real `task` binary, with
taskfiles/deploy.yml included the way Taskfile.yml includes it; the deploy itself runs
against fake kubectl and kn that record what they are asked to do.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.contract.k8s_support import by_kind, kubectl, rendered, services
from tests.contract.test_deploy_kn import (
    KN_SERVICE_APPLY_FLAGS,
    KN_SOURCE_PING_DESCRIBE_FLAGS,
    KN_SOURCE_PING_FLAGS,
    flags,
    ping_source_from_kn,
    service_from_kn,
)
from tools import REPO_ROOT
from tools.deploy.manifests import Doc, with_image

# What Taskfile.yml gets (docs/deploy.md and the report quote it).
INCLUDE = """includes:
  deploy:
    taskfile: {path}
    flatten: true
"""
IMAGE = "registry.test/order-saga/functions:t1"
SECRETS = {"DATABASE_URL": "postgresql://saga:pg-supersecret@db:5432/saga",
           "SAGA_JWT_SECRET": "jwt-supersecret"}
ADMIN = {"SAGA_BOOTSTRAP_ADMIN_USERNAME": "ops",
         "SAGA_BOOTSTRAP_ADMIN_PASSWORD": "admin-supersecret"}
KUBECTL_VERBS = {"apply", "wait", "delete", "get", "label", "create", "logs"}


@dataclass
class Call:
    argv: list[str]
    stdin: str | None = None
    timed_out: bool = False  # a `kubectl wait` the fake cluster would have waited out


def taskfile(tmp_path: Path) -> Path:
    """Taskfile.yml as it is, plus the includes stanza, in a temporary folder (its other
    includes made absolute, so they still resolve to this checkout)."""
    root = yaml.safe_load((REPO_ROOT / "Taskfile.yml").read_text(encoding="utf-8"))
    includes = root.setdefault("includes", {}) or {}
    for key, entry in list(includes.items()):
        if isinstance(entry, str):
            includes[key] = str((REPO_ROOT / entry).resolve())
        elif not Path(entry["taskfile"]).is_absolute():
            entry["taskfile"] = str((REPO_ROOT / entry["taskfile"]).resolve())
    stanza = yaml.safe_load(INCLUDE.format(path=REPO_ROOT / "taskfiles" / "deploy.yml"))
    includes.update(stanza["includes"])
    root["includes"] = includes
    path = tmp_path / "Taskfile.yml"
    path.write_text(yaml.safe_dump(root, sort_keys=False))
    return path


def task(tmp_path: Path, *args: str, extra_env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    environ = {k: v for k, v in os.environ.items()
               if k not in {*SECRETS, *ADMIN, "REGISTRY", "TAG", "IMAGE"}}
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ.get('PATH', '')}"
    environ.update(extra_env or {})
    return subprocess.run([str(bin_dir / "task"), "--taskfile", str(taskfile(tmp_path)), *args],
                          capture_output=True, text=True, env=environ, check=False,
                          timeout=120)


def parse_script(text: str) -> list[Call]:
    """The commands of a dry-run script, in order: continuations joined, heredocs as stdin,
    every alternative of an `if` and of `||` (the probes first), a command substitution's
    command before the one it is in; echo, exit and `|| true` left out."""
    calls: list[Call] = []
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.strip()
        while line.endswith(("\\", "||")):
            line = line.removesuffix("\\").rstrip() + " " + next(lines).strip()
        if not line or line.startswith("#") or line in ("else", "fi", "set -eu", "exit 1"):
            continue
        if line.startswith("if ") and line.endswith("; then"):
            line = line[3:-len("; then")]
        line = line.replace(">/dev/null 2>&1", "").replace(">&2", "")
        line = line.removesuffix("|| true").strip()
        if line.endswith("<<'SAGA_MANIFESTS'"):
            body = []
            for body_line in lines:
                if body_line == "SAGA_MANIFESTS":
                    break
                body.append(body_line)
            argv = shlex.split(line[: -len("<<'SAGA_MANIFESTS'")])
            calls.append(Call(argv, "\n".join(body) + "\n"))
            continue
        calls += [Call(shlex.split(inner)) for inner in SUBSTITUTION.findall(line)]
        line = SUBSTITUTION.sub("", line)
        if line.startswith("echo ") or re.fullmatch(r"\w+=", line):
            continue
        for alternative in line.split(" || "):
            calls += [Call(shlex.split(part)) for part in alternative.split(" | ")]
    return calls


SUBSTITUTION = re.compile(r"\$\((.*?)\)")  # $(command): ours hold no ")" of their own


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    done = task(tmp_path_factory.mktemp("task"), "deploy:dry", "REGISTRY=registry.test",
                "TAG=t1", extra_env=SECRETS)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_four_tasks_exist(tmp_path: Path) -> None:
    done = task(tmp_path, "--list", "--json")
    assert done.returncode == 0, done.stderr
    names = {t["name"] for t in json.loads(done.stdout)["tasks"]}
    assert {"deploy", "deploy:dry", "undeploy", "image", "image:push", "image:test"} <= names
    assert {"up", "test", "lint"} <= names  # the root Taskfile's own tasks still there


def test_the_dry_run_is_a_valid_shell_script_without_secrets(dry_run: str) -> None:
    assert dry_run.startswith("#!/bin/sh\n")
    assert subprocess.run(["sh", "-n"], input=dry_run, text=True, check=False).returncode == 0
    for value in SECRETS.values():
        assert value not in dry_run
    assert '--from-literal=DATABASE_URL="$DATABASE_URL"' in dry_run


def test_every_function_gets_kn_service_apply_with_its_manifests_flags(dry_run: str) -> None:
    calls = [c.argv for c in parse_script(dry_run) if c.argv[:3] == ["kn", "service", "apply"]]
    expected = services(with_image(rendered("dev"), IMAGE))
    assert sorted(argv[3] for argv in calls) == sorted(expected)
    for argv in calls:
        used = [f for f, _ in flags(argv[4:])]
        assert set(used) <= KN_SERVICE_APPLY_FLAGS, set(used) - KN_SERVICE_APPLY_FLAGS
        values = dict(flags(argv[4:]))
        assert values["--image"] == IMAGE
        for flag in ("--scale-min", "--scale-max", "--scale-target", "--concurrency-limit",
                     "--env", "--env-from", "--probe-readiness", "--probe-liveness"):
            assert flag in used, (argv[3], flag)
        assert service_from_kn(argv) == _quantities_as_text(expected[argv[3]])


def _quantities_as_text(doc: Doc) -> Doc:
    for container in doc["spec"]["template"]["spec"]["containers"]:
        for section in container.get("resources", {}).values():
            section.update({k: str(v) for k, v in section.items()})
    return doc


def test_only_commands_and_flags_the_clis_have(dry_run: str) -> None:
    for call in parse_script(dry_run):
        argv = call.argv
        if argv[0] == "kn":
            if argv[1:3] == ["service", "apply"]:
                allowed = KN_SERVICE_APPLY_FLAGS
            elif argv[1:3] == ["source", "ping"] and argv[3] in ("create", "update"):
                allowed = KN_SOURCE_PING_FLAGS
            elif argv[1:4] == ["source", "ping", "describe"]:
                allowed = KN_SOURCE_PING_DESCRIBE_FLAGS
            else:
                raise AssertionError(f"unexpected kn command: {argv}")
            used = {f for f, _ in flags(argv[4:])}
            assert used <= allowed, (argv[:4], used - allowed)
        else:
            assert argv[0] == "kubectl" and argv[1] in KUBECTL_VERBS, argv


def test_everything_the_overlay_renders_is_deployed_once(dry_run: str) -> None:
    deployed: list[tuple[str, str]] = []
    for call in parse_script(dry_run):
        if call.stdin is not None:
            deployed += [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(call.stdin)]
        elif call.argv[:3] == ["kn", "service", "apply"]:
            deployed.append(("Service", call.argv[3]))
        elif call.argv[:4] == ["kn", "source", "ping", "create"]:
            deployed.append(("PingSource", call.argv[4]))
    expected = [(d["kind"], d["metadata"]["name"]) for d in rendered("dev")]
    assert sorted(deployed) == sorted(expected)
    # Objects piped to kubectl are the rendered ones, with the image set.
    piped = [d for c in parse_script(dry_run) if c.stdin for d in yaml.safe_load_all(c.stdin)]
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in with_image(rendered("dev"), IMAGE)}
    for doc in piped:
        assert doc == by_name[(doc["kind"], doc["metadata"]["name"])]


def test_the_order_is_one_that_works(dry_run: str) -> None:
    calls = parse_script(dry_run)

    def first(predicate: str) -> int:
        return next(i for i, c in enumerate(calls) if predicate in shlex.join(c.argv)
                    or (c.stdin and predicate in c.stdin))

    namespace = first("kind: Namespace")
    catalogue = first("name: saga-catalogue")
    secret = first("create secret generic saga-secrets")
    topics_ready = first("--for=condition=Ready --timeout=180s --namespace kafka")
    migrated = first("--timeout=660s --namespace order-saga jobs.batch/saga-migrate")
    bootstrap_removed = first("delete --namespace order-saga --ignore-not-found "
                              "--cascade=foreground jobs.batch/saga-bootstrap")
    bootstrap_applied = first("name: saga-bootstrap\n")
    bootstrapped = first("--timeout=360s --namespace order-saga jobs.batch/saga-bootstrap")
    bootstrap_log = first("--selector=batch.kubernetes.io/job-name=saga-bootstrap")
    functions = first("kn service apply")
    pings = first("kn source ping")
    sink = first("kind: KafkaSink")
    sources = first("kind: KafkaSource")
    assert namespace <= catalogue < secret < topics_ready < migrated < functions < pings < sink
    assert sink < sources
    # The bootstrap: after the migrations, before any function, the old run removed first.
    assert migrated < bootstrap_removed < bootstrap_applied < bootstrapped < bootstrap_log
    assert bootstrap_log < functions
    assert first("jobs.batch/saga-migrate") < first("kind: Job")  # old run removed first


def test_image_push_builds_and_pushes_the_image_deploy_uses(tmp_path: Path) -> None:
    done = task(tmp_path, "--dry", "image:push", "REGISTRY=registry.test", "TAG=t1")
    assert done.returncode == 0, done.stderr
    assert f'docker build --tag "{IMAGE}" .' in done.stderr
    assert f'docker push "{IMAGE}"' in done.stderr
    podman = task(tmp_path, "--dry", "image:push", "CONTAINER_CLI=podman",
                  extra_env={"REGISTRY": "env.registry", "TAG": "t2"})
    assert 'podman build --tag "env.registry/order-saga/functions:t2" .' in podman.stderr


def test_undeploy_keeps_topics_unless_purged(tmp_path: Path) -> None:
    plain = task(tmp_path, "--dry", "undeploy")
    purge = task(tmp_path, "--dry", "undeploy", "PURGE=1")
    assert plain.returncode == purge.returncode == 0
    assert "undeploy --purge" in purge.stderr and "--purge" not in plain.stderr


# --- running the plan, against fake kubectl and kn ----------------------------------------

# A fake cluster's kubectl (and kn): each call is recorded. Its Jobs each ran three pods
# (<job>-1, -2, -3); the one FAKE_FAILED_JOB names failed (as Kubernetes 1.31 and later
# report it: FailureTarget, then Failed), every other one completed (SuccessCriteriaMet, then
# Complete). `kubectl wait` on a Job answers from those conditions; one whose condition is
# not met is recorded as timed out unless it asked with --timeout=0s (only looked once).
# FAKE_FAIL makes any call containing its text fail.
FAKE = """#!@PYTHON@ -S
import json, os, subprocess, sys
argv = [os.path.basename(sys.argv[0])] + sys.argv[1:]
if argv[:2] == ["kubectl", "kustomize"]:
    sys.exit(subprocess.run([@KUBECTL@, *sys.argv[1:]]).returncode)
stdin = None if sys.stdin.isatty() else sys.stdin.read()
job = next((a.split("/", 1)[1] for a in argv if a.startswith("jobs.batch/")), None)
failed = job is not None and job == os.environ.get("FAKE_FAILED_JOB")
conditions = ["FailureTarget", "Failed"] if failed else ["SuccessCriteriaMet", "Complete"]
met, out = True, ""
if argv[1] == "wait" and job is not None:
    wanted = next(a for a in argv if a.startswith("--for=")).removeprefix("--for=")
    met = wanted in ("jsonpath={.status.conditions[0].status}=True",
                     "jsonpath={.status.conditions[0].type}=" + conditions[0],
                     "condition=" + conditions[-1].lower())
elif argv[1:3] == ["get", "pods"]:
    selector = next(a for a in argv if a.startswith("--selector="))
    out = selector.rsplit("=", 1)[1] + "-3"
elif argv[1] == "get" and job is not None and failed:
    out = "BackoffLimitExceeded"
with open(@LOG@, "a") as f:
    f.write(json.dumps({"argv": argv, "stdin": stdin or None,
                        "timed_out": not met and "--timeout=0s" not in argv}) + "\\n")
print(out, end="")
if not met:
    print("error: timed out waiting for the condition on jobs/" + job, file=sys.stderr)
    sys.exit(1)
fail = os.environ.get("FAKE_FAIL", "")
sys.exit(3 if fail and fail in " ".join(argv) else 0)
"""


def fake_tools(tmp_path: Path) -> tuple[Path, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "calls.jsonl"
    fake = (FAKE.replace("@PYTHON@", sys.executable).replace("@KUBECTL@", repr(kubectl()))
            .replace("@LOG@", repr(str(log))))
    for tool in ("kubectl", "kn"):
        path = tmp_path / tool
        path.write_text(fake)
        path.chmod(0o755)
    return tmp_path, log


def recorded(log: Path) -> list[Call]:
    return [Call(**json.loads(line)) for line in log.read_text().splitlines()] \
        if log.exists() else []


def run_deploy(tmp_path: Path, extra_env: dict[str, str]) -> tuple[int, list[Call], str]:
    tools, log = fake_tools(tmp_path)
    environ = {**{k: v for k, v in os.environ.items() if k not in {*SECRETS, *ADMIN}},
               **extra_env}
    done = subprocess.run(
        [sys.executable, "-m", "tools.deploy", "deploy", "--overlay", "dev", "--image", IMAGE,
         "--kubectl", str(tools / "kubectl"), "--kn", str(tools / "kn")],
        capture_output=True, text=True, env=environ, stdin=subprocess.DEVNULL, check=False,
        cwd=REPO_ROOT, timeout=120)
    return done.returncode, recorded(log), done.stderr


def run_script(tmp_path: Path, script: str, extra_env: dict[str, str]
               ) -> tuple[int, list[Call], str]:
    """The dry run's script run by sh, as an operator runs it, with the fakes on PATH."""
    tools, log = fake_tools(tmp_path)
    path = tmp_path / "deploy.sh"
    path.write_text(script)
    environ = {**{k: v for k, v in os.environ.items() if k not in {*SECRETS, *ADMIN}},
               **extra_env, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["sh", str(path)], capture_output=True, text=True, env=environ,
                          stdin=subprocess.DEVNULL, check=False, cwd=tmp_path, timeout=120)
    return done.returncode, recorded(log), done.stderr


def test_deploy_runs_what_the_dry_run_prints(tmp_path: Path, dry_run: str) -> None:
    code, calls, echo = run_deploy(tmp_path / "run", SECRETS)
    assert code == 0, echo
    code, script_calls, said = run_script(tmp_path / "script", dry_run, SECRETS)
    assert code == 0, said
    printed = [c for c in script_calls
               if c.argv[:3] != ["kubectl", "create", "secret"]]  # piped by the run instead
    assert [c.argv for c in calls] == [c.argv for c in printed]
    assert any(c.argv[:3] == ["kubectl", "logs", "--namespace"] for c in calls)  # the Jobs'
    secret = next(c for c in calls if c.stdin and "kind: Secret" in c.stdin)
    assert yaml.safe_load(secret.stdin or "")["stringData"] == SECRETS
    for value in SECRETS.values():  # on stdin only: never in an argument list or the echo
        assert all(value not in " ".join(c.argv) for c in calls)
        assert value not in echo


def test_a_missing_ping_source_is_created(tmp_path: Path) -> None:
    code, calls, _ = run_deploy(tmp_path, {**SECRETS, "FAKE_FAIL": "ping describe"})
    assert code == 0
    made = [c.argv[3] for c in calls if c.argv[:3] == ["kn", "source", "ping"]
            and c.argv[3] != "describe"]
    assert made == ["create", "create", "create"]
    pings = by_kind(rendered("dev"), "sources.knative.dev", "PingSource")
    for call in calls:
        if call.argv[:4] == ["kn", "source", "ping", "create"]:
            expected = pings[call.argv[4]]
            expected["metadata"].pop("labels")
            assert ping_source_from_kn(call.argv) == expected


@pytest.mark.parametrize(("job", "fix"), [
    ("saga-migrate", "the database in DATABASE_URL of the Secret saga-secrets"),
    ("saga-bootstrap", "the catalogue (the ConfigMap saga-catalogue")])
@pytest.mark.parametrize("how", ["task deploy", "its dry run, run by sh"])
def test_a_failed_job_stops_the_deploy_at_once_naming_the_fix(
        tmp_path: Path, dry_run: str, job: str, fix: str, how: str) -> None:
    """A Job that failed (a bad catalogue, a database that refuses us) stops the deploy once
    it failed, not at its activeDeadlineSeconds, and before any function: its last pod's
    log (the attempt that failed it; `kubectl logs job/...` picks the first), the reason
    and what to fix."""
    environ = {**SECRETS, "FAKE_FAILED_JOB": job}
    code, calls, said = (run_deploy(tmp_path, environ) if how == "task deploy"
                         else run_script(tmp_path, dry_run, environ))
    assert code == 1, said
    waited_out = [c.argv for c in calls if c.timed_out]
    assert not waited_out, f"waited for what a failed Job never reaches: {waited_out}"
    logs = [c.argv for c in calls if c.argv[:2] == ["kubectl", "logs"]]
    assert logs[-1] == ["kubectl", "logs", "--namespace", "order-saga", f"{job}-3"]
    assert (f"task deploy: Job {job} failed (BackoffLimitExceeded): its last pod's log is "
            f"above; fix what the log names") in said and fix in said, said
    assert not any(c.argv[0] == "kn" for c in calls)
    if job == "saga-migrate":  # the bootstrap never ran
        assert not any("jobs.batch/saga-bootstrap" in c.argv for c in calls)


def test_a_failing_command_stops_the_deploy_with_its_exit_code(tmp_path: Path) -> None:
    code, calls, echo = run_deploy(tmp_path, {**SECRETS, "FAKE_FAIL": "kafkatopics"})
    assert code == 3 and "deploy stopped: exit code 3" in echo
    assert calls[-1].argv[:2] == ["kubectl", "wait"]
    assert not any("jobs.batch/saga-migrate" in c.argv for c in calls)


def test_the_first_admins_secret_comes_from_its_variables_only(tmp_path: Path) -> None:
    code, calls, echo = run_deploy(tmp_path, {**SECRETS, **ADMIN})
    assert code == 0, echo
    [secret] = [yaml.safe_load(c.stdin or "") for c in calls
                if c.stdin and "name: saga-bootstrap\n" in c.stdin and "kind: Secret" in c.stdin]
    assert secret["stringData"] == ADMIN
    for value in ADMIN.values():
        assert all(value not in " ".join(c.argv) for c in calls)
        assert value not in echo
    # After the Secret saga-secrets, before the Job that reads it.
    order = [c.stdin or " ".join(c.argv) for c in calls]
    made = next(i for i, text in enumerate(order) if "SAGA_BOOTSTRAP_ADMIN_PASSWORD" in text)
    assert made < next(i for i, text in enumerate(order) if "kind: Job" in text)

    dry = task(tmp_path, "deploy:dry", extra_env={**SECRETS, **ADMIN})
    assert dry.returncode == 0, dry.stderr
    assert ('--from-literal=SAGA_BOOTSTRAP_ADMIN_PASSWORD="$SAGA_BOOTSTRAP_ADMIN_PASSWORD"'
            in dry.stdout)
    assert ADMIN["SAGA_BOOTSTRAP_ADMIN_PASSWORD"] not in dry.stdout


def test_without_its_variables_the_first_admins_secret_is_left_alone(dry_run: str,
                                                                     tmp_path: Path) -> None:
    """A cluster with an identity provider has none; one made earlier stays as it is."""
    assert "secrets/saga-bootstrap" not in dry_run
    assert "create secret generic saga-bootstrap" not in dry_run
    code, calls, echo = run_deploy(tmp_path, {**SECRETS,
                                              "SAGA_BOOTSTRAP_ADMIN_USERNAME": "ops"})
    assert code == 2 and "set SAGA_BOOTSTRAP_ADMIN_PASSWORD too" in echo
    assert calls == []


def test_undeploy_deletes_both_secrets_and_both_jobs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.deploy", "undeploy", "--dry-run", "--kubectl", "kubectl"],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT, timeout=120,
        env={**os.environ, "PATH": f"{Path(kubectl()).parent}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    deleted = [arg for c in parse_script(done.stdout) if c.argv[1] == "delete" for arg in c.argv]
    assert {"secrets/saga-secrets", "secrets/saga-bootstrap", "jobs.batch/saga-migrate",
            "jobs.batch/saga-bootstrap", "configmaps/saga-catalogue"} <= set(deleted)


def test_without_secret_variables_the_cluster_secret_is_kept(tmp_path: Path) -> None:
    code, calls, _ = run_deploy(tmp_path, {k: "" for k in SECRETS})
    assert code == 0
    assert ["kubectl", "get", "--namespace", "order-saga", "secrets/saga-secrets"] in [
        c.argv for c in calls]
    assert not any(c.stdin and "kind: Secret" in c.stdin for c in calls)


def test_half_the_secret_variables_is_an_error(tmp_path: Path) -> None:
    code, calls, echo = run_deploy(tmp_path, {"DATABASE_URL": SECRETS["DATABASE_URL"],
                                              "SAGA_JWT_SECRET": ""})
    assert code == 2 and "SAGA_JWT_SECRET" in echo
    assert calls == []


def test_a_missing_cli_is_named(tmp_path: Path) -> None:
    tools, _ = fake_tools(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "tools.deploy", "deploy", "--kubectl", str(tools / "kubectl"),
         "--kn", str(tmp_path / "no-kn-here")],
        capture_output=True, text=True, env={**os.environ, **SECRETS}, check=False, cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 2
    assert "no-kn-here' not found on PATH" in done.stderr


def test_prod_dry_run_sizes(tmp_path: Path) -> None:
    done = task(tmp_path, "deploy:dry", "OVERLAY=prod", extra_env=SECRETS)
    assert done.returncode == 0, done.stderr
    calls = parse_script(done.stdout)
    topics = next(c for c in calls if c.stdin and "kind: KafkaTopic" in c.stdin)
    assert {d["spec"]["partitions"] for d in yaml.safe_load_all(topics.stdin or "")} == {12}
    saga = next(c.argv for c in calls if c.argv[:4] == ["kn", "service", "apply", "order-saga"])
    assert dict(flags(saga[4:]))["--scale-max"] == "18"
