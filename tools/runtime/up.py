"""`./taskw up`: the whole system on one machine, from the manifests that go to the cluster.
Start: manifests (refused before anything starts if wrong) -> infrastructure, while the
zygotes import -> migrations and topics -> the api, the catalogue (seed.py) and, on Tansu,
the outbox of unfinished orders again (recovery.py); the other functions in the background
-> the sources and the control port -> ready once the API answers /healthz. Stop (Ctrl-C,
SIGTERM, SIGHUP or `stop`; while starting, its waits end at once): sources, then functions,
then infrastructure, so nothing is left behind (stopping.py forces on a second signal).
One runtime per state dir."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from common.events import catalogue
from common.kafka import producer_config
from tools.infra import mask_url
from tools.infra.kafka_clients import ensure_topics, runtime_topics
from tools.manifests.loader import ManifestError, load_project_manifests
from tools.manifests.specs import Manifests
from tools.manifests.topics import load_topic_specs
from tools.runtime.console import Console, LogFile
from tools.runtime.control import ControlServer
from tools.runtime.eventing.dead_letters import DeadLetterProducer
from tools.runtime.eventing.delivery import HttpSender, with_backoff_scale
from tools.runtime.eventing.kafka_source import KafkaSourceDispatcher
from tools.runtime.eventing.ping_source import PingSourceRunner
from tools.runtime.phases import Clock, StopRequested, banner, wait_healthy, wait_until
from tools.runtime.recovery import on_database_clock, republish_unfinished
from tools.runtime.seed import seed_catalogue
from tools.runtime.serving.supervisor import Supervisor
from tools.runtime.state import RuntimeState, StackRunning, held, resolve_state_dir, state_path
from tools.runtime.stopping import Stopper
from tools.settings import LocalSettings

if TYPE_CHECKING:
    from tools.infra.resolve import Infra


def run_up(settings: LocalSettings, *, root: Path, ready: threading.Event | None = None,
           stop: threading.Event | None = None) -> int:
    """Run until Ctrl-C, SIGTERM, SIGHUP or `stop`; 0 after a clean stop, 1 if starting
    failed, 2 if refused (a manifest is wrong, or a stack already runs on the state dir).
    `ready` is set once the API answers GET /healthz."""
    stop = stop if stop is not None else threading.Event()
    # The stdout the runtime started with: the log tail shows lines a moment after they were
    # written, and must not write them into whatever stdout is borrowed then (a test running
    # a CLI command in-process beside this runtime captures its own output).
    console = Console(sys.stdout)
    try:
        manifests = load_project_manifests(root)
    except ManifestError as exc:
        console.line(f"up: {exc}")
        return 2
    state_dir = resolve_state_dir(settings.state_dir, root)
    try:
        with held(state_dir):
            return _run(settings, manifests, root, state_dir, console, ready, stop)
    except StackRunning as exc:
        console.line(f"up: {exc}")
        return 2


def _run(settings: LocalSettings, manifests: Manifests, root: Path, state_dir: Path,
         console: Console, ready: threading.Event | None, stop: threading.Event) -> int:
    log_dir = state_dir / "logs"
    state = RuntimeState(state_dir, log_dir=log_dir)
    stopper = Stopper(stop, console, state)
    with stopper.installed(), contextlib.ExitStack() as stack:
        stack.callback(state.stopped)  # runs last: after everything is down
        try:
            running = _start(settings, manifests, root, state_dir, console, state, stack,
                             stop)
        except StopRequested:
            console.line(f"up: stopped while starting{stopper.cause()}")
            return 0
        except Exception as exc:
            console.line(f"up: failed to start: {type(exc).__name__}: {exc}")
            state.phase("failed")
            return 1
        if ready is not None:
            ready.set()
        while not stop.wait(2.0):
            running.record(state)
        stopping_since = time.monotonic()
        console.line(f"up: stopping{stopper.cause()} (sources, then functions, then "
                     "infrastructure; a second signal forces) ...")
        state.phase("stopping")
    console.line(f"up: stopped in {time.monotonic() - stopping_since:.1f} s")
    return 0


@dataclass
class _Running:
    dispatchers: list[KafkaSourceDispatcher] = field(default_factory=list)
    pings: list[PingSourceRunner] = field(default_factory=list)

    def record(self, state: RuntimeState) -> None:
        """Counters and lag of every source into runtime-state.json, for `saga status`."""
        sources = {d.spec.name: d.stats().as_dict() for d in self.dispatchers}
        pings = {p.spec.name: {"sink": p.spec.sink, "schedule": p.spec.schedule,
                               "sent": p.sent, "failed": p.failed,
                               "next_tick": p.next_tick().isoformat()} for p in self.pings}
        state.sources(sources, pings)

    def wait_assigned(self, console: Console, *, stop: threading.Event,
                      timeout: float) -> None:
        """Ready means an order placed now flows at once: every source has its partitions."""
        waiting = list(self.dispatchers)

        def assigned() -> bool:
            waiting[:] = [d for d in waiting if not d.wait_assigned(0)]
            return not waiting

        if not wait_until(assigned, stop=stop, timeout=timeout):
            console.line("up: still waiting for partitions: "
                         + ", ".join(d.spec.name for d in waiting))

    def stop(self) -> None:
        """Stop every source at once: each lets its in-flight requests finish and commits."""
        stoppers = [d.stop for d in self.dispatchers] + [p.stop for p in self.pings]
        if stoppers:
            with ThreadPoolExecutor(max_workers=len(stoppers)) as pool:
                list(pool.map(lambda stop: stop(), stoppers))


def _start(settings: LocalSettings, manifests: Manifests, root: Path, state_dir: Path,
           console: Console, state: RuntimeState, stack: contextlib.ExitStack,
           stop: threading.Event) -> _Running:
    from common.migrate import upgrade
    from tools.infra.resolve import infrastructure

    started = time.monotonic()
    timings: dict[str, float] = {}
    clock = Clock(timings)

    def check() -> None:
        if stop.is_set():
            raise StopRequested

    # Before the broker starts, so never later than it: the retention sweep keeps every inbox
    # row from this instant on while Tansu holds the records (functions/retention/rules.py).
    before_broker = time.monotonic()
    with clock("infrastructure"):
        infra = stack.enter_context(infrastructure(settings, state_dir,
                                                   broker=settings.broker))
    check()
    broker_started_at = (on_database_clock(infra.database_url, before_broker)
                         if infra.embedded_broker == "tansu" else None)
    settings, env = _on(settings, infra, state_dir, broker_started_at)
    log_dir = state_dir / "logs"
    supervisor = Supervisor(manifests, cwd=root, env=env, log_dir=log_dir, console=console,
                            idle_scale_to_zero_s=settings.idle_scale_to_zero_s,
                            ingress_port=settings.api_port,
                            preferred_ports={catalogue.CONSOLE: settings.console_port},
                            on_change=state.function_changed)
    stack.callback(supervisor.stop)
    for status in supervisor.statuses():
        state.function_changed(status)
    state.update(kafka_bootstrap=infra.kafka_bootstrap,
                 kafka_broker_kind=settings.kafka_broker_kind,
                 database_url=mask_url(infra.database_url),
                 embedded={"database": infra.embedded_db, "broker": infra.embedded_broker},
                 broker_started_at=env.get("SAGA_BROKER_STARTED_AT"))
    topics = runtime_topics(settings, set(catalogue.topics()) | set(manifests.topics()),
                            load_topic_specs(root))
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="up") as pool:
        pool.submit(supervisor.starter.prepare)  # the zygote imports while we migrate
        created = pool.submit(clock.timed, "topics", ensure_topics, settings, topics)
        with clock("migrations"):
            upgrade(infra.database_url)
        api = pool.submit(clock.timed, "api started", supervisor.start_ingress)
        seeded = pool.submit(clock.timed, "seed", seed_catalogue, infra.database_url, root)
        created.result()
        # Sources join their groups now: Tansu assigns partitions only after a few seconds
        # (session.timeout.ms/2), which then overlap with starting the functions.
        running = _start_sources(settings, manifests, supervisor, console, log_dir, stack)
        republished = (pool.submit(clock.timed, "outbox re-publish", republish_unfinished,
                                   settings, infra.database_url)
                       if infra.embedded_broker == "tansu" else None)
        api.result()
        supervisor.start_initial()  # the others, in the background: the console shows each
        seeded.result()
        if republished is not None and (count := republished.result()):
            console.line(f"up: re-published {count} outbox event(s) of unfinished orders")
    supervisor.start_scaler()
    control = stack.enter_context(ControlServer(
        {d.spec.name: (d, d.spec.consumer_group) for d in running.dispatchers},
        functions=supervisor.processes))
    state.update(control={"url": control.url, "token": control.token})
    check()

    api_url = supervisor.ingress.url if supervisor.ingress is not None else None
    operators = supervisor.processes.get(catalogue.CONSOLE)
    console_url = f"{operators.url}/console" if operators is not None else None
    with clock("api healthy"):
        if api_url is not None:
            wait_healthy(api_url + "/healthz", stop=stop, timeout=60.0)
    with clock("sources assigned"):
        running.wait_assigned(console, stop=stop, timeout=15.0)
    total = round(time.monotonic() - started, 2)
    state.update(phase="running", api_url=api_url, console_url=console_url,
                 timings=timings | {"total": total})
    console.line(banner(api_url, console_url, log_dir, timings, total))
    return running


def _on(settings: LocalSettings, infra: Infra, state_dir: Path,
        broker_started_at: datetime | None) -> tuple[LocalSettings, dict[str, str]]:
    """The runtime's settings on `infra`, and the environment of every function it starts."""
    from tools.settings import broker_env, local_jwt_secret

    # SAGA_KAFKA_BROKER_KIND=tansu also marks a given broker as Tansu (tests pass one in).
    kind = infra.broker_kind(settings)
    settings = settings.model_copy(update={
        "database_url": SecretStr(infra.database_url),
        "kafka_bootstrap_servers": infra.kafka_bootstrap,
        "kafka_broker_kind": kind,
        "state_dir": state_dir})
    env = {"DATABASE_URL": infra.database_url, "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
           **broker_env(kind), "SAGA_PROFILE": "local",
           "SAGA_STATE_DIR": str(state_dir), "SAGA_JWT_SECRET": local_jwt_secret(settings),
           # The console shows which functions run or scaled to zero from it.
           "SAGA_RUNTIME_STATE_FILE": str(state_path(state_dir))}
    if broker_started_at is not None:  # our Tansu: the one broker whose start (empty) we know
        settings = settings.model_copy(update={"broker_started_at": broker_started_at})
        env["SAGA_BROKER_STARTED_AT"] = broker_started_at.isoformat()
    return settings, env


def _start_sources(settings: LocalSettings, manifests: Manifests, supervisor: Supervisor,
                   console: Console, log_dir: Path, stack: contextlib.ExitStack) -> _Running:
    """A dispatcher per KafkaSource and a ticker per PingSource, each stopped by `stack`."""
    sender = HttpSender()
    stack.callback(sender.close)
    runtime_log = LogFile(log_dir / "knative.ndjson", "knative")
    stack.callback(runtime_log.close)
    dead_letters = DeadLetterProducer(producer_config(settings) | {"client.id": "kafka-sink"})
    stack.callback(dead_letters.close)
    running = _Running()
    scale = settings.delivery_backoff_scale
    if scale != 1:
        console.line(f"up: every KafkaSource's backoff is scaled by {scale:g} "
                     "(SAGA_DELIVERY_BACKOFF_SCALE)")
    for manifest_spec in manifests.kafka_sources.values():
        spec = replace(manifest_spec, delivery=with_backoff_scale(manifest_spec.delivery, scale))
        function = supervisor[spec.sink]
        dispatcher = KafkaSourceDispatcher(
            spec, settings=settings, target=function, sender=sender, console=console,
            request_timeout=function.spec.timeout_seconds, dead_letters=dead_letters,
            dead_letter_topic=manifests.dead_letter_topic(spec), runtime_log=runtime_log)
        dispatcher.start()
        running.dispatchers.append(dispatcher)
    for ping in manifests.ping_sources.values():
        function = supervisor[ping.sink]
        runner = PingSourceRunner(ping, target=function, sender=sender, console=console,
                                  request_timeout=function.spec.timeout_seconds,
                                  runtime_log=runtime_log)
        runner.start()
        running.pings.append(runner)
    stack.callback(running.stop)
    return running
