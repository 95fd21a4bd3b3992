"""The PingSource emulation: at each cron tick, POST a dev.knative.sources.ping event as
Knative's mt-ping adapter does: a new id per tick, source /apis/v1/namespaces/<ns>/
pingsources/<name>, the manifest's data (or dataBase64) with its contentType, 5 retries
exponential from 50 ms. PingSource v1 has no dead-letter sink: an event that still fails is
logged and lost, as on a cluster. Ticks follow the wall clock in the source's time zone; one
missed while stopping or asleep is not replayed. One ticker thread per source; deliveries
run on a small pool, so a slow sink never delays the next tick."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from tools.manifests.cron import next_tick, zone_of
from tools.manifests.specs import DeliverySpec, PingSourceSpec
from tools.runtime.console import Console, LogFile, ecs_event
from tools.runtime.eventing.delivery import DeliveryResult, HttpSender, Target, Verdict, deliver

PING_EVENT_TYPE = "dev.knative.sources.ping"
PING_DELIVERY = DeliverySpec(retry=5, backoff_policy="exponential", backoff_delay=0.05)


def ping_source_uri(name: str, namespace: str = "default") -> str:
    return f"/apis/v1/namespaces/{namespace}/pingsources/{name}"


def ping_headers(spec: PingSourceSpec, tick: datetime, *, namespace: str = "default",
                 event_id: str | None = None) -> dict[str, str]:
    """Binary-mode HTTP headers of the event for one tick."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id or str(uuid.uuid4()),
        "ce-source": ping_source_uri(spec.name, namespace),
        "ce-type": PING_EVENT_TYPE,
        "ce-time": tick.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if spec.content_type:
        headers["Content-Type"] = spec.content_type
    headers.update({f"ce-{name}": value for name, value in spec.ce_overrides.items()})
    return headers


class PingSourceRunner:
    def __init__(self, spec: PingSourceSpec, *, target: Target, request_timeout: float,
                 sender: HttpSender, console: Console,
                 runtime_log: LogFile | None = None) -> None:
        self.spec = spec
        self._target, self._sender, self._console = target, sender, console
        self._timeout, self._log = request_timeout, runtime_log
        self._zone = zone_of(spec.timezone)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"ping-{spec.name}")
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._tick_loop, name=f"ping-{self.spec.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()  # also ends retry waits of deliveries in flight
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def next_tick(self, after: datetime | None = None) -> datetime:
        return next_tick(self.spec.schedule, self._zone, after or datetime.now(UTC))

    def _tick_loop(self) -> None:
        tick = self.next_tick()
        while not self._stop.is_set():
            remaining = (tick - datetime.now(UTC)).total_seconds()
            if remaining > 0:
                # Short waits: a wall-clock change (NTP, suspend) is noticed within a second.
                self._stop.wait(min(remaining, 1.0))
                continue
            try:
                self._pool.submit(self.fire, tick)
            except RuntimeError:  # the pool shut down: stopping
                return
            # From now, not from the tick: ticks missed while late are not replayed.
            tick = self.next_tick(max(tick, datetime.now(UTC)))

    def fire(self, tick: datetime) -> DeliveryResult:
        """Deliver the event of one tick (also callable directly, e.g. by tests)."""
        headers = ping_headers(self.spec, tick)
        result = deliver(self._sender, self._target, headers, self.spec.body(), PING_DELIVERY,
                         timeout=self._timeout, interrupted=self._stop)
        with self._lock:
            if result.verdict is Verdict.SUCCESS:
                self.sent += 1
            else:
                self.failed += 1
        if result.verdict is Verdict.DEAD_LETTER:
            status = result.last.status or result.last.error
            doc = ecs_event("knative.ping.failed", service=self.spec.sink, outcome="failure",
                            level="error",
                            message=f"ping {self.spec.name} not delivered after "
                                    f"{result.attempts} attempt(s) ({status}); event lost",
                            cloudevents={"id": headers["ce-id"], "type": PING_EVENT_TYPE,
                                         "source": headers["ce-source"]})
            if self._log is not None:
                self._log.write_doc(doc)
            self._console.ecs(doc)
        return result
