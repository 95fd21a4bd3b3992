"""Knative's delivery rules, shared by the KafkaSource and PingSource emulations, as the
eventing-kafka-broker data plane applies them: a binary-mode POST with `Prefer: reply`
(the reply is read and discarded); 2xx is success; 5xx, 404, 408, 409, 429 and no
response at all (refused, reset, timeout) are retried, any other status is final (a dead
letter); retry n of delivery.retry waits backoffDelay*n (linear) or backoffDelay*2^n
(exponential), and each attempt is bounded by delivery.timeout."""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import urlsplit

from tools.manifests.specs import DeliverySpec
from tools.runtime.eventing.http_client import HttpClient, NoResponse

RETRYABLE_STATUSES = frozenset({404, 408, 409, 429})


class Verdict(enum.Enum):
    SUCCESS = "success"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    ABANDONED = "abandoned"  # stopped or revoked mid-way: not handled, not committed


def classify(status: int | None) -> Verdict:
    """What Knative does after one attempt that ended with `status` (None: no response)."""
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.SUCCESS
    if status >= 500 or status in RETRYABLE_STATUSES:
        return Verdict.RETRY
    return Verdict.DEAD_LETTER


def backoff_delay(delivery: DeliverySpec, retry_number: int) -> float:
    """Seconds to wait before retry number `retry_number` (the first retry is 1)."""
    if delivery.backoff_policy == "linear":
        return delivery.backoff_delay * retry_number
    return delivery.backoff_delay * float(2**retry_number)


def with_backoff_scale(delivery: DeliverySpec, scale: float) -> DeliverySpec:
    """The same delivery with every backoff wait multiplied by `scale`
    (SAGA_DELIVERY_BACKOFF_SCALE: a local knob; the manifests keep their values)."""
    return delivery if scale == 1 else replace(
        delivery, backoff_delay=delivery.backoff_delay * scale)


def backoff_schedule(delivery: DeliverySpec) -> list[float]:
    return [backoff_delay(delivery, n) for n in range(1, delivery.retry + 1)]


@dataclass(frozen=True)
class Response:
    """The outcome of one attempt. status None means there was no HTTP response."""

    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)  # names lower-cased
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class DeliveryResult:
    verdict: Verdict  # SUCCESS, DEAD_LETTER or ABANDONED
    last: Response
    attempts: int
    url: str


class FunctionUnavailable(RuntimeError):
    """The sink function could not be started; delivery treats it as no response."""


class Target(Protocol):
    """Where deliveries go: a function that may have to be started first."""

    @property
    def url(self) -> str: ...

    def acquire(self) -> str:
        """Start the function if needed; the base URL. Raises FunctionUnavailable."""
        ...

    def release(self) -> None: ...


OnRetry = Callable[[int, Response, float], None]


class HttpSender:
    """POSTs events to functions over pooled keep-alive connections (httpclient). Thread-safe."""

    def __init__(self) -> None:
        self._client = HttpClient()
        self._addresses: dict[str, tuple[str, int]] = {}

    def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> Response:
        address = self._addresses.get(url)
        if address is None:
            parsed = urlsplit(url)
            address = (parsed.hostname or "127.0.0.1", parsed.port or 80)
            self._addresses[url] = address  # a dict store is atomic: no lock needed
        started = time.monotonic()
        try:
            reply = self._client.post(address[0], address[1], "/",
                                      {**headers, "Prefer": "reply"}, body, timeout)
        except NoResponse as exc:
            return Response(None, error=str(exc), seconds=time.monotonic() - started)
        return Response(reply.status, reply.body, reply.headers, None,
                        time.monotonic() - started)

    def close(self) -> None:
        self._client.close()


def deliver(
    sender: HttpSender,
    target: Target,
    headers: Mapping[str, str],
    body: bytes,
    delivery: DeliverySpec,
    *,
    timeout: float,
    interrupted: threading.Event,
    on_retry: OnRetry | None = None,
) -> DeliveryResult:
    """Deliver one event with retries. Returns SUCCESS, DEAD_LETTER (the caller sends it to
    the dead-letter sink if there is one) or ABANDONED when `interrupted` is set before the
    event was handled (the caller must then not commit past it)."""
    attempts, url = 0, ""
    while True:
        attempts += 1
        try:
            url = target.acquire()
        except FunctionUnavailable as exc:
            response = Response(None, error=str(exc))
        else:
            try:
                response = sender.post(url, headers, body, timeout)
            finally:
                target.release()
        verdict = classify(response.status)
        if verdict is not Verdict.RETRY:
            return DeliveryResult(verdict, response, attempts, url)
        if attempts > delivery.retry:
            return DeliveryResult(Verdict.DEAD_LETTER, response, attempts, url)
        delay = _retry_delay(delivery, attempts, response)
        if on_retry is not None:
            on_retry(attempts, response, delay)
        if interrupted.wait(delay) or interrupted.is_set():
            return DeliveryResult(Verdict.ABANDONED, response, attempts, url)


def _retry_delay(delivery: DeliverySpec, retry_number: int, response: Response) -> float:
    delay = backoff_delay(delivery, retry_number)
    # retryAfterMax opts in to honouring Retry-After on 429/503, capped by it.
    if delivery.retry_after_max is not None and response.status in (429, 503):
        after = retry_after_seconds(response.headers.get("retry-after"))
        if after is not None:
            delay = max(delay, min(after, delivery.retry_after_max))
    return delay


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds from now."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
