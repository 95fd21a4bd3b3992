"""docs/deploy.md's commands can be run as written: every command it runs inside the
cluster uses only what is there, and every command on the operator's machine is one the
page says they have.

- Inside a pod of ours (`kubectl exec` or `kubectl run` in the functions' namespace, a
  container of a Job, Pod or Deployment the page applies, and every Job the overlays
  render): only what the image holds, `python -m X` with X a runnable module under
  common/, functions/ or migrations/, or `alembic`. Never the tools: they are not in the
  image (Dockerfile; tests/contract/test_dockerfile.py).
- Inside a Kafka broker pod (namespace kafka): Kafka's own bin/kafka-*.sh scripts.
- On the operator's machine: an allow-list (kubectl, kn, curl, ./taskw and a few POSIX
  tools); `./taskw` with an operator task (status, replay, trace, dlq) and `saga` must
  be commands the CLI accepts, checked with its own parser.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from tests.contract.k8s_support import OVERLAYS, rendered
from tests.contract.test_manifests_consistency import settings_env_names
from tools import REPO_ROOT
from tools.cli.main import build_parser

DEPLOY_MD = REPO_ROOT / "docs" / "deploy.md"
SHELL_FENCES = {"sh", "shell", "bash", "console"}
IMAGE_PACKAGES = ("common", "functions", "migrations")
FUNCTIONS_NAMESPACE = "order-saga"
KAFKA_NAMESPACE = "kafka"
# What the operator's machine has (docs/deploy.md, section 1): the two CLIs, curl, the
# project's ./taskw, and POSIX tools and shell builtins to glue them.
LOCAL_COMMANDS = {"kubectl", "kn", "curl", "./taskw", "task", "export", "unset", "base64",
                  "head", "sed", "printf", "echo", "python3"}
# ./taskw tasks that run a `saga` command: its arguments follow `--`.
SAGA_TASKS = {"status", "replay", "trace", "dlq"}
SHELL_WORDS = {"then", "do", "else", "if", "while", "until", "!"}


@dataclass
class Command:
    argv: list[str]
    line: str
    stdin: str | None = None  # a heredoc's body

    def __str__(self) -> str:
        return self.line


# --- reading the page's shell ----------------------------------------------------------

def shell_blocks(markdown: str) -> Iterator[str]:
    """The body of every fenced block whose info string names a shell."""
    for match in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", markdown, re.M | re.S):
        if match.group(1) in SHELL_FENCES:
            yield match.group(2)


def commands(block: str) -> Iterator[Command]:
    """Each simple command of a block: continuations joined, heredocs as stdin, pipelines
    and lists split, `$( )` substitutions as commands of their own, a function definition's
    body as its commands, leading VAR=value assignments dropped."""
    lines = iter(block.splitlines())
    for raw in lines:
        line = raw
        while line.rstrip().endswith("\\"):
            line = line.rstrip()[:-1] + " " + next(lines, "")
        heredoc = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", line)
        stdin = None
        if heredoc:
            body = []
            for body_line in lines:
                if body_line.strip() == heredoc.group(1):
                    break
                body.append(body_line)
            stdin = "\n".join(body) + "\n"
            line = line[: heredoc.start()] + line[heredoc.end():]
        for text in _split(line):
            argv = _words(text)
            if argv:
                yield Command(argv, text.strip(), stdin if argv[0] == "kubectl" else None)


def _split(line: str) -> list[str]:
    """`line` cut at | || && ; & and around $( ) (also inside double quotes), outside
    quotes; a comment dropped."""
    parts: list[str] = []
    outer: list[tuple[str, str]] = []  # (text so far, quote) of each enclosing command
    current, quote, index = "", "", 0
    while index < len(line):
        char = line[index]
        if quote != "'" and line.startswith("$(", index):
            outer.append((current, quote))
            current, quote = "", ""
            index += 2
            continue
        if quote:
            current += char
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"' and index + 1 < len(line):
                current += line[index + 1]
                index += 1
        elif char in "'\"":
            quote, current = char, current + char
        elif char == "#" and (not current or current[-1].isspace()) and not outer:
            break
        elif char == ")" and outer:
            parts.append(current)
            current, quote = outer.pop()
            current += "__SUBSTITUTION__"
        elif char in "|&;" and not _redirection(line, index, current):
            if line.startswith(("&&", "||"), index):
                index += 1
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    parts.append(current)
    return [p for p in parts if p.strip()]


def _redirection(line: str, index: int, before: str) -> bool:
    """The & at `index` belongs to a redirection (2>&1, &>file), not a list."""
    return line[index] == "&" and (before.rstrip().endswith((">", "<"))
                                   or line[index + 1:index + 2] == ">")


def _words(text: str) -> list[str]:
    text = text.strip()
    function = re.match(r"^\w+\s*\(\)\s*\{?", text)
    if function:
        text = text[function.end():]
    text = text.strip().strip("{}").strip()
    words = shlex.split(text, comments=False)
    while words and (words[0] in SHELL_WORDS or re.match(r"^\w+=", words[0])):
        words = words[1:]
    return words


# --- the rules ---------------------------------------------------------------------------

def image_violation(argv: list[str]) -> str | None:
    """Why `argv` cannot run in the functions' image; None when it can."""
    if argv[:1] == ["alembic"]:
        return None
    if argv[:2] not in (["python", "-m"], ["python3", "-m"]) or len(argv) < 3:
        return f"{shlex.join(argv)!r}: the image runs `python -m MODULE` or `alembic` only"
    module = argv[2]
    if module.split(".")[0] not in IMAGE_PACKAGES:
        return (f"{module}: not in the image (it holds {', '.join(IMAGE_PACKAGES)}; the tools "
                "run on your machine)")
    return _runnable(module)


def _runnable(module: str) -> str | None:
    path = REPO_ROOT.joinpath(*module.split("."))
    source = path / "__main__.py" if path.is_dir() else path.with_suffix(".py")
    if not source.is_file():
        return f"{module}: no such module"
    text = source.read_text(encoding="utf-8")
    if source.name != "__main__.py" and '__name__ == "__main__"' not in text:
        return f"{module}: not runnable with python -m (no __main__ block)"
    return None


def _namespace(argv: list[str]) -> str | None:
    for index, arg in enumerate(argv):
        if arg in ("-n", "--namespace") and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--namespace="):
            return arg.partition("=")[2]
    return None


def saga_violation(argv: list[str]) -> str | None:
    """Why the `saga` CLI refuses `argv` (its arguments); None when it parses."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            message = stderr.getvalue().strip().splitlines()[-1:] or ["refused"]
            return f"saga {shlex.join(argv)}: {message[0]}"
    return None


def _placeholders(argv: list[str]) -> list[str]:
    """Placeholders the page uses (ORDER_ID, <id>, ID) made into values the CLI parses."""
    return [re.sub(r"^(ORDER_ID|<[^>]+>)$", "6a24a5f7-0618-45ef-b594-4c9321d9442c",
                   "1" if a == "ID" else a) for a in argv]


def violations(command: Command) -> list[str]:
    argv = command.argv
    if argv[0] == "kubectl" and len(argv) > 1 and argv[1] in ("exec", "run", "debug"):
        why = _in_a_pod(argv)
    else:
        why = _on_your_machine(argv)
    found = [] if why is None else [f"{command}: {why}"]
    if command.stdin is not None and argv[:2] in (["kubectl", "apply"], ["kubectl", "create"]):
        found += [f"{command} (heredoc): {why}" for why in manifest_violations(command.stdin)]
    return found


def _in_a_pod(argv: list[str]) -> str | None:
    inside = argv[argv.index("--") + 1:] if "--" in argv else []
    namespace = _namespace(argv)
    if namespace == KAFKA_NAMESPACE and argv[1] == "exec":
        if inside and re.fullmatch(r"bin/kafka-[\w-]+\.sh", inside[0]):
            return None
        return "a broker pod runs Kafka's bin/kafka-*.sh scripts"
    if namespace != FUNCTIONS_NAMESPACE:
        return f"name the namespace (-n {FUNCTIONS_NAMESPACE} or -n {KAFKA_NAMESPACE})"
    if not inside:
        return ("no command after `--` (an interactive shell in a pod has nothing of ours "
                "but the image)")
    return image_violation(inside)


def _on_your_machine(argv: list[str]) -> str | None:
    if argv[0] == "saga":
        return ("`saga` is not on your PATH and not in the image: run it as "
                "`./taskw <task> -- ARGS` (section 5.4)")
    if argv[0] == ".venv/bin/saga":
        return saga_violation(_placeholders(argv[1:]))
    if argv[0] == "./taskw" and len(argv) > 1 and argv[1] in SAGA_TASKS:
        rest = argv[argv.index("--") + 1:] if "--" in argv else []
        return saga_violation(_placeholders([argv[1], *rest]))
    if argv[0] == "python3" and argv[1:2] != ["-c"]:
        return "python3 on your machine only with -c (the tools: ./taskw)"
    if argv[0] not in LOCAL_COMMANDS:
        return f"{argv[0]!r} is not a command docs/deploy.md says you have"
    return None


def manifest_violations(text: str) -> list[str]:
    """The containers of our image in the workloads of a YAML stream, held to the image."""
    found = []
    for doc in yaml.safe_load_all(text):
        for name, container in _containers(doc or {}):
            if "order-saga/functions" not in str(container.get("image", "")):
                continue
            argv = [str(a) for key in ("command", "args") for a in _list(container.get(key))]
            if argv and (why := image_violation(argv)) is not None:
                found.append(f"{doc.get('kind')} {name}: {why}")
    return found


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _containers(doc: dict[str, object]) -> Iterator[tuple[str, dict[str, object]]]:
    spec: object = doc.get("spec") or {}
    if doc.get("kind") != "Pod":
        spec = ((spec if isinstance(spec, dict) else {}).get("template") or {})
        spec = (spec if isinstance(spec, dict) else {}).get("spec") or {}
    for container in (spec if isinstance(spec, dict) else {}).get("containers") or []:
        if isinstance(container, dict):
            name = (doc.get("metadata") or {})
            yield str(name.get("name") if isinstance(name, dict) else ""), container


def page_violations(markdown: str) -> list[str]:
    return [why for block in shell_blocks(markdown) for command in commands(block)
            for why in violations(command)]


# --- the tests ---------------------------------------------------------------------------

def test_every_command_on_the_page_runs_where_it_is_run() -> None:
    page = DEPLOY_MD.read_text(encoding="utf-8")
    # A block without a language would escape the check.
    fences = [m.group(1) for m in re.finditer(r"^```(\w*)[^\n]*\n.*?^```", page, re.M | re.S)]
    assert "" not in fences and "sh" in fences
    assert page_violations(page) == []


def test_the_page_walks_the_bootstrap_journey() -> None:
    """A first order on a fresh cluster needs a catalogue and an admin: the page reads the
    bootstrap Job's log, gets an admin token from the api, and orders through the api's
    URL; the saga CLI runs on the operator's machine through a port-forward."""
    page = [c.argv for block in shell_blocks(DEPLOY_MD.read_text(encoding="utf-8"))
            for c in commands(block)]
    joined = [shlex.join(argv) for argv in page]
    assert any("job/saga-bootstrap" in line and argv[:2] == ["kubectl", "logs"]
               for line, argv in zip(joined, page, strict=True))
    assert any(argv[0] == "curl" and any(a.endswith("/auth/token") for a in argv)
               for argv in page)
    assert any(argv[0] == "curl" and any(a.endswith("/orders") for a in argv) for argv in page)
    assert any(argv[:2] == ["kubectl", "port-forward"] for argv in page)
    assert any(argv[:2] == ["./taskw", "dlq"] for argv in page)


def test_every_setting_the_page_configures_is_one_the_code_reads() -> None:
    """The page's YAML snippets of saga-config (the identity provider's settings)."""
    page = DEPLOY_MD.read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```", page, re.M | re.S)
    keys = {key for block in blocks
            for key in re.findall(r"^\s*((?:SAGA|KAFKA)_[A-Z_]+|DATABASE_URL):", block, re.M)}
    assert "SAGA_JWKS_ROLES_CLAIM" in keys
    assert keys <= settings_env_names()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_job_runs_what_the_image_holds(overlay: str) -> None:
    jobs = [d for d in rendered(overlay) if d["kind"] == "Job"]
    assert {d["metadata"]["name"] for d in jobs} == {"saga-migrate", "saga-bootstrap"}
    for job in jobs:
        for container in job["spec"]["template"]["spec"]["containers"]:
            argv = [*container.get("command", []), *container.get("args", [])]
            assert image_violation(argv) is None, (job["metadata"]["name"], argv)


# What the page said before the bootstrap Job existed: each must be caught.
BEFORE = """
```sh
POD=$(kubectl get pods -n order-saga -l serving.knative.dev/service=api -o name | head -1)
saga() { kubectl exec -n order-saga "$POD" -c user-container -- python -m tools.cli.main "$@"; }
ADMIN=$(saga token --customer ops --admin)
```

```sh
saga dlq            # list and re-drive them (saga dlq --help), via the saga() helper above
```
"""


def test_the_old_pages_commands_are_caught() -> None:
    found = page_violations(BEFORE)
    assert any("tools.cli.main: not in the image" in why for why in found), found
    assert sum("`saga` is not on your PATH" in why for why in found) == 2, found


@pytest.mark.parametrize(("line", "caught"), [
    ("./taskw dlq", None),  # with no action it lists
    ("./taskw dlq -- list --all", None),
    ("./taskw trace -- ORDER_ID", None),
    ("./taskw replay -- --source inventory --to earliest --dry-run", None),
    ("./taskw replay -- --source inventory --to yesterday", "invalid choice"),
    ("kubectl exec -n order-saga deploy/api -- python -m tools.ops.status", "not in the image"),
    ("kubectl exec -n order-saga deploy/api -- python -m functions.api.nothing",
     "no such module"),
    ("kubectl exec -n order-saga deploy/api -- python -m functions.api.products",
     "not runnable"),
    ("kubectl exec -n order-saga deploy/api -- python -m functions.api.bootstrap", None),
    ("kubectl exec -n order-saga deploy/api -- sh -c 'saga status'", "python -m MODULE"),
    ("kubectl exec -it -n order-saga deploy/api -- sh", "python -m MODULE"),
    ("kubectl exec -n kafka saga-broker-0 -- bin/kafka-topics.sh --list", None),
    ("kubectl exec -n kafka saga-broker-0 -- python -m tools.cli.main", "bin/kafka-*.sh"),
    ("kubectl run shell --image=x -- python -m tools.cli.main", "name the namespace"),
    ("jq .access_token", "'jq' is not a command"),
    ("python3 -m tools.cli.main token", "only with -c"),
    ("TOKEN=$(curl -s $API/x | python3 -c 'import json') && echo $TOKEN", None),
    ("docker run order-saga/functions", "'docker' is not a command"),
])
def test_the_rules(line: str, caught: str | None) -> None:
    found = page_violations(f"```sh\n{line}\n```\n")
    if caught is None:
        assert found == []
    else:
        assert len(found) == 1 and caught in found[0], found


def test_a_heredoc_workload_is_held_to_the_image() -> None:
    job = """```sh
kubectl apply -n order-saga -f - <<'EOF'
apiVersion: batch/v1
kind: Job
metadata:
  name: by-hand
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: saga
          image: localhost:5001/order-saga/functions:dev
          command: ["python", "-m", "tools.cli.main", "status"]
EOF
```
"""
    [why] = page_violations(job)
    assert "Job by-hand: tools.cli.main: not in the image" in why
    assert page_violations(job.replace("tools.cli.main", "functions.api.bootstrap")) == []


def test_the_parser_reads_the_shell_the_page_uses() -> None:
    block = """API=$(kn service describe api -n order-saga -o url)
curl -s -X POST $API/orders -H "Authorization: Bearer $TOKEN" \\
  -d '{"items": [{"sku": "MUG-001", "quantity": 2}]}'   # a comment | not a pipe
kubectl apply -n order-saga -f - <<'EOF'
kind: Cluster
EOF
export DATABASE_URL=$(kubectl get secret x -o jsonpath='{.data.uri}' | base64 -d | sed 's|a|b|')
./taskw deploy:dry > /tmp/deploy.sh 2>&1
"""
    got = [c.argv[0:2] for c in commands(block)]
    assert got == [["kn", "service"], ["curl", "-s"], ["kubectl", "apply"], ["kubectl", "get"],
                   ["base64", "-d"], ["sed", "s|a|b|"], ["export", "DATABASE_URL=__SUBSTITUTION__"],
                   ["./taskw", "deploy:dry"]]
    applied = next(c for c in commands(block) if c.argv[:2] == ["kubectl", "apply"])
    assert applied.stdin == "kind: Cluster\n"
