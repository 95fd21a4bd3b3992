"""What `task deploy` and `task undeploy` do, as data: ordered phases of commands built from
a rendered overlay (tools.deploy.shell runs or prints them). Deploy, each phase needing
those before it: the Namespace and ConfigMaps; the Secrets, from the environment; the
KafkaTopics, waited for; the migration Job, then the bootstrap Job, each waited for until it
completes or fails, its last pod's log shown (a failure stops the deploy, naming the fix);
`kn service apply` per function; `kn source ping` per PingSource; the KafkaSink and
KafkaSources with kubectl (kn's Kafka plugin lacks delivery, ordering and initialOffset),
waited for. Every rendered document lands in one phase; an unknown kind stops the plan."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tools.deploy import kn as knflags
from tools.deploy.manifests import (
    DeployError,
    Doc,
    dump,
    group_kind,
    name,
    namespace,
    of_kind,
)
from tools.deploy.secret import SecretSpec

# kubectl's unambiguous resource names (a bare "service" would be the core Service).
RESOURCES: dict[tuple[str, str], str] = {
    ("", "Namespace"): "namespaces",
    ("", "ConfigMap"): "configmaps",
    ("", "Secret"): "secrets",
    ("batch", "Job"): "jobs.batch",
    ("kafka.strimzi.io", "KafkaTopic"): "kafkatopics.kafka.strimzi.io",
    ("serving.knative.dev", "Service"): "services.serving.knative.dev",
    ("sources.knative.dev", "PingSource"): "pingsources.sources.knative.dev",
    ("eventing.knative.dev", "KafkaSink"): "kafkasinks.eventing.knative.dev",
    ("sources.knative.dev", "KafkaSource"): "kafkasources.sources.knative.dev",
}
TOPIC_TIMEOUT = "180s"
SOURCES_TIMEOUT = "300s"
COMPONENT = "app.kubernetes.io/component"


@dataclass(frozen=True)
class JobKind:
    title: str  # its phase's
    fix: str  # what to look at when it fails


# The Jobs, by their app.kubernetes.io/component label, in the order they run.
JOBS = {
    "migrations": JobKind(
        "Database migrations: a fresh Job, waited for, its log shown",
        "fix what the log names (the database in DATABASE_URL of the Secret saga-secrets, "
        "or a migration)"),
    "bootstrap": JobKind(
        "Bootstrap: the catalogue and the first admin, a fresh Job, waited for, its log shown",
        "fix what the log names: the catalogue (the ConfigMap saga-catalogue, made from "
        "the overlay's catalogue.json) or the first admin (the Secret saga-bootstrap); "
        "docs/deploy.md, section 5.1"),
}
# How long `kubectl wait` waits for a Job without an activeDeadlineSeconds of its own.
JOB_TIMEOUT_S = 600
# Beyond a Job's activeDeadlineSeconds: its own deadline fails it first, which the plan
# then reports with its log, rather than kubectl's "timed out".
JOB_WAIT_MARGIN_S = 60
# A Job's first condition is its outcome: Kubernetes 1.31 and later first add
# SuccessCriteriaMet or FailureTarget, then Complete or Failed once its pods are gone;
# earlier versions add Complete or Failed at once. (A Job never suspended has no other.)
COMPLETED = ("Complete", "SuccessCriteriaMet")
JOB_LABEL = "batch.kubernetes.io/job-name"  # on every pod of a Job


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    stdin: str | None = None
    # How a dry run prints it, when that is not argv and stdin (the Secret's pipeline).
    shown: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Either:
    """Run `then` if `probe` succeeds, else `otherwise` (kn has no `source ping apply`)."""

    probe: Command
    then: Command
    otherwise: Command


Step = Command | Either


@dataclass(frozen=True)
class Phase:
    title: str
    steps: tuple[Step, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Tools:
    kubectl: str = "kubectl"
    kn: str = "kn"


def deploy_plan(docs: Sequence[Doc], secrets: Sequence[SecretSpec],
                environ: Mapping[str, str], tools: Tools = Tools()) -> list[Phase]:
    by_kind = _by_kind(docs)
    k = tools.kubectl
    ns = _functions_namespace(docs)
    phases = [
        Phase("Namespace and configuration",
              _steps(_apply(k, by_kind.pop(("", "Namespace"), [])),
                     _apply(k, by_kind.pop(("", "ConfigMap"), [])))),
        *(Phase(f"Secret {secret.name}", _steps(_secret_step(k, secret, ns, environ)))
          for secret in secrets),
    ]
    topics = by_kind.pop(("kafka.strimzi.io", "KafkaTopic"), [])
    phases.append(Phase("Kafka topics (Strimzi), then wait until the Topic Operator made them",
                        _steps(_apply(k, topics), _wait(k, topics, "Ready", TOPIC_TIMEOUT))))
    jobs = _jobs_by_component(by_kind.pop(("batch", "Job"), []))
    for component, kind in JOBS.items():
        phases.append(Phase(kind.title, tuple(
            step for job in jobs.get(component, []) for step in _job_steps(k, job, kind))))
    phases.append(Phase("Functions: kn service apply (waits for each revision to be ready)",
                        tuple(Command(tuple(knflags.service_apply(d, tools.kn)))
                              for d in by_kind.pop(("serving.knative.dev", "Service"), []))))
    pings = by_kind.pop(("sources.knative.dev", "PingSource"), [])
    phases.append(Phase("PingSources: kn source ping update, or create the first time",
                        tuple(step for p in pings for step in _ping_steps(p, tools))))
    sinks = by_kind.pop(("eventing.knative.dev", "KafkaSink"), [])
    sources = by_kind.pop(("sources.knative.dev", "KafkaSource"), [])
    phases.append(Phase(
        "Dead-letter sink and KafkaSources: kubectl, as the kn Kafka plugin lacks delivery, "
        "ordering and initialOffset",
        _steps(_apply(k, sinks), _apply(k, sources),
               _wait(k, sinks + sources, "Ready", SOURCES_TIMEOUT))))
    _all_placed(by_kind)
    return [p for p in phases if p.steps]


def undeploy_plan(docs: Sequence[Doc], secrets: Sequence[SecretSpec], *, purge: bool = False,
                  tools: Tools = Tools()) -> list[Phase]:
    """Stop consuming first, then remove what consumed; topics (the replay log) and the
    namespace only with `purge`."""
    by_kind = _by_kind(docs)
    k = tools.kubectl
    ns = _functions_namespace(docs)
    order = [
        ("KafkaSources (this also deletes their consumer groups: a later deploy starts "
         "from initialOffset, i.e. re-delivers what the topics hold)",
         [("sources.knative.dev", "KafkaSource")]),
        ("PingSources and functions", [("sources.knative.dev", "PingSource"),
                                       ("serving.knative.dev", "Service")]),
        ("Dead-letter sink, Jobs and configuration",
         [("eventing.knative.dev", "KafkaSink"), ("batch", "Job"), ("", "ConfigMap")]),
    ]
    phases = [Phase(title, _steps(*(_delete(k, by_kind.pop(key, [])) for key in keys)))
              for title, keys in order]
    phases.append(Phase(f"Secrets {', '.join(s.name for s in secrets)}", (Command(
        (k, "delete", "--namespace", ns, "--ignore-not-found",
         *(f"secrets/{s.name}" for s in secrets))),)))
    topics = by_kind.pop(("kafka.strimzi.io", "KafkaTopic"), [])
    namespaces = by_kind.pop(("", "Namespace"), [])
    if purge:
        phases.append(Phase("Purge: the topics (every event in them is lost) and the namespace",
                            _steps(_delete(k, topics), _delete(k, namespaces))))
    _all_placed(by_kind)
    return [p for p in phases if p.steps]


# --- building blocks -----------------------------------------------------------------

def _by_kind(docs: Iterable[Doc]) -> dict[tuple[str, str], list[Doc]]:
    grouped: dict[tuple[str, str], list[Doc]] = {}
    for doc in docs:
        grouped.setdefault(group_kind(doc), []).append(doc)
    return grouped


def _steps(*steps: Step | None) -> tuple[Step, ...]:
    return tuple(s for s in steps if s is not None)


def _all_placed(left: Mapping[tuple[str, str], list[Doc]]) -> None:
    if left:
        what = ", ".join(f"{kind} {name(d)}" for (_, kind), ds in left.items() for d in ds)
        raise DeployError(f"the overlay renders objects task deploy does not handle: {what} "
                          "(extend tools/deploy/plan.py)")


def _functions_namespace(docs: Sequence[Doc]) -> str:
    found = {namespace(d) for d in of_kind(docs, "serving.knative.dev", "Service")}
    if len(found) != 1 or None in found:
        raise DeployError(f"the Services must share one namespace, found {sorted(map(str, found))}")
    return str(found.pop())


def _ns(doc: Doc) -> str:
    value = namespace(doc)
    if value is None:
        raise DeployError(f"{doc['kind']} {name(doc)} has no namespace")
    return value


def _ref(doc: Doc) -> str:
    return f"{RESOURCES[group_kind(doc)]}/{name(doc)}"


def _objects(docs: Sequence[Doc]) -> str:
    return ", ".join(f"{d['kind']}/{name(d)}" for d in docs)


def _apply(kubectl: str, docs: Sequence[Doc]) -> Command | None:
    if not docs:
        return None
    return Command((kubectl, "apply", "-f", "-"), stdin=dump(docs), note=_objects(docs))


def _wait(kubectl: str, docs: Sequence[Doc], condition: str, timeout: str) -> Command | None:
    if not docs:
        return None
    namespaces = {_ns(d) for d in docs}
    if len(namespaces) != 1:
        raise DeployError(f"cannot wait across namespaces {sorted(namespaces)}")
    return Command((kubectl, "wait", f"--for=condition={condition}", f"--timeout={timeout}",
                    "--namespace", namespaces.pop(), *(_ref(d) for d in docs)))


def _delete(kubectl: str, docs: Sequence[Doc]) -> Command | None:
    if not docs:
        return None
    by_namespace: dict[str | None, list[Doc]] = {}
    for doc in docs:
        by_namespace.setdefault(namespace(doc), []).append(doc)
    if len(by_namespace) != 1:
        raise DeployError(f"cannot delete across namespaces {sorted(map(str, by_namespace))}")
    ns, group = by_namespace.popitem()
    scope = () if ns is None else ("--namespace", ns)
    return Command((kubectl, "delete", *scope, "--ignore-not-found",
                    *(_ref(d) for d in group)))


def _jobs_by_component(jobs: Sequence[Doc]) -> dict[str, list[Doc]]:
    grouped: dict[str, list[Doc]] = {}
    for job in jobs:
        component = (job["metadata"].get("labels") or {}).get(COMPONENT)
        if component not in JOBS:
            raise DeployError(f"Job {name(job)}: label {COMPONENT}={component!r} is none of "
                              f"{', '.join(JOBS)} (the order Jobs run in: tools/deploy/plan.py)")
        grouped.setdefault(component, []).append(job)
    return grouped


def _job_steps(kubectl: str, job: Doc, kind: JobKind) -> tuple[Step, ...]:
    ns, ref = _ns(job), _ref(job)
    # Never give up before the Job itself would.
    deadline = job["spec"].get("activeDeadlineSeconds")
    timeout = f"{deadline + JOB_WAIT_MARGIN_S if deadline else JOB_TIMEOUT_S}s"
    return _steps(
        Command((kubectl, "delete", "--namespace", ns, "--ignore-not-found",
                 "--cascade=foreground", ref),
                note="a Job's pod template cannot change: remove the previous run"),
        _apply(kubectl, [job]),
        Command((kubectl, "wait", "--for=jsonpath={.status.conditions[0].status}=True",
                 f"--timeout={timeout}", "--namespace", ns, ref),
                note="until it completes or fails (a failed Job ends the wait at once)"),
        _shell(_job_outcome(kubectl, job, kind),
               note="its last pod's log (`kubectl logs job/...` may show an earlier "
                    "attempt's); a failed Job ends the deploy here"))


def _job_outcome(kubectl: str, job: Doc, kind: JobKind) -> str:
    """POSIX sh, the same with `set -e` or without: the log of the Job's last pod, then
    stop unless the Job completed, naming its reason and the fix."""
    ns, ref = _ns(job), _ref(job)

    def first_condition(value: str) -> str:
        return shlex.join((kubectl, "wait", f"--for=jsonpath={{.status.conditions[0].type}}="
                           f"{value}", "--timeout=0s", "--namespace", ns, ref))

    last_pod = shlex.join((kubectl, "get", "pods", "--namespace", ns,
                           f"--selector={JOB_LABEL}={name(job)}",
                           "--sort-by=.metadata.creationTimestamp",
                           "--output=jsonpath={.items[-1:].metadata.name}"))
    logs = shlex.join((kubectl, "logs", "--namespace", ns)) + ' "$pod"'
    reason = shlex.join((kubectl, "get", "--namespace", ns, ref,
                         "--output=jsonpath={.status.conditions[0].reason}"))
    failed = _double_quoted(f"task deploy: Job {name(job)} failed (") + f"$({reason})" + \
        _double_quoted(f"): its last pod's log is above; {kind.fix}; then run task deploy "
                       "again")
    completed = " ||\n   ".join(f"{first_condition(value)} >/dev/null 2>&1"
                                  for value in COMPLETED)
    return "\n".join((
        f"pod=$({last_pod}) || true",
        f"if {completed}; then",
        f"  {logs}",
        "else",
        f"  {logs} || true",
        f'  echo "{failed}" >&2',
        "  exit 1",
        "fi"))


def _double_quoted(text: str) -> str:
    """`text` as it reads between double quotes in sh."""
    for special in ("\\", '"', "$", "`"):
        text = text.replace(special, "\\" + special)
    return text


def _shell(text: str, note: str) -> Command:
    """A step in POSIX sh: the run hands it to `sh -c`, the dry run prints it as it is."""
    return Command(("sh", "-c", text), shown=text, note=note)


def _secret_step(kubectl: str, secret: SecretSpec, ns: str,
                 environ: Mapping[str, str]) -> Command | None:
    values = secret.values(environ)
    if values is None and secret.optional:
        return None
    if values is None:
        return Command((kubectl, "get", "--namespace", ns, f"secrets/{secret.name}"),
                       note=f"{' and '.join(secret.required)} not set: keep the Secret in the "
                            "cluster (this fails if there is none yet)")
    return Command((kubectl, "apply", "-f", "-"), stdin=secret.yaml(ns, values),
                   shown=secret.shown(ns, list(values), kubectl),
                   note=f"Secret/{secret.name} from the environment ({', '.join(values)}); "
                        "task deploy pipes it to kubectl on stdin, values never on a command line")


def _ping_steps(doc: Doc, tools: Tools) -> list[Step]:
    ns = _ns(doc)
    steps: list[Step] = [Either(
        probe=Command((tools.kn, "source", "ping", "describe", name(doc), "--namespace", ns)),
        then=Command(tuple(knflags.ping_source(doc, "update", tools.kn))),
        otherwise=Command(tuple(knflags.ping_source(doc, "create", tools.kn))))]
    # kn has no flags for a source's labels: set the manifest's with kubectl.
    labels = doc["metadata"].get("labels") or {}
    if labels:
        steps.append(Command((tools.kubectl, "label", "--namespace", ns, "--overwrite", _ref(doc),
                              *(f"{key}={value}" for key, value in labels.items()))))
    if doc["metadata"].get("annotations"):
        raise DeployError(f"PingSource {name(doc)}: annotations are not deployed (no kn flag)")
    return steps
