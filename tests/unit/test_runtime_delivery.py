"""Knative's delivery rules as the local runtime applies them: which statuses retry, the
backoff schedule, the retry loop, the dead-letter extensions and the record mapping."""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping

import pytest
from confluent_kafka import Message

from tools import REPO_ROOT
from tools.manifests.loader import load_project_manifests
from tools.manifests.specs import DeliverySpec
from tools.runtime.eventing.dead_letters import dead_letter_record, error_extensions
from tools.runtime.eventing.delivery import (
    HttpSender,
    Response,
    Verdict,
    backoff_delay,
    backoff_schedule,
    classify,
    deliver,
    retry_after_seconds,
    with_backoff_scale,
)
from tools.runtime.eventing.http_event import KAFKA_EVENT_TYPE, http_event
from tools.settings import LocalSettings


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_success(status: int) -> None:
    assert classify(status) is Verdict.SUCCESS


@pytest.mark.parametrize("status", [None, 404, 408, 409, 429, 500, 501, 502, 503, 504, 599])
def test_retried_statuses(status: int | None) -> None:
    assert classify(status) is Verdict.RETRY


@pytest.mark.parametrize("status", [100, 300, 301, 302, 304, 400, 401, 403, 405, 410, 413, 415,
                                    422, 451])
def test_other_statuses_go_to_the_dead_letter_sink(status: int) -> None:
    assert classify(status) is Verdict.DEAD_LETTER


def test_exponential_backoff_doubles_from_twice_the_delay() -> None:
    delivery = DeliverySpec(retry=4, backoff_policy="exponential", backoff_delay=0.2)
    assert backoff_schedule(delivery) == pytest.approx([0.4, 0.8, 1.6, 3.2])


def test_linear_backoff_grows_by_the_delay() -> None:
    delivery = DeliverySpec(retry=3, backoff_policy="linear", backoff_delay=0.5)
    assert backoff_schedule(delivery) == pytest.approx([0.5, 1.0, 1.5])
    assert backoff_delay(delivery, 10) == pytest.approx(5.0)


def test_the_local_backoff_scale_shortens_every_wait_and_nothing_else(
        monkeypatch: pytest.MonkeyPatch) -> None:
    inventory = load_project_manifests(REPO_ROOT).kafka_sources["inventory"].delivery
    assert sum(backoff_schedule(inventory)) == pytest.approx(102.0)  # as the manifest says
    monkeypatch.setenv("SAGA_DELIVERY_BACKOFF_SCALE", "0.01")
    scaled = with_backoff_scale(inventory, LocalSettings().delivery_backoff_scale)
    assert sum(backoff_schedule(scaled)) == pytest.approx(1.02)
    assert (scaled.retry, scaled.timeout, scaled.dead_letter_sink) == (
        inventory.retry, inventory.timeout, inventory.dead_letter_sink)
    assert with_backoff_scale(inventory, 1) is inventory
    monkeypatch.setenv("SAGA_DELIVERY_BACKOFF_SCALE", "2")
    with pytest.raises(ValueError, match="less than or equal to 1"):
        LocalSettings()


def test_knative_default_delivery_schedule() -> None:
    schedule = backoff_schedule(DeliverySpec())
    assert len(schedule) == 10
    assert schedule[0] == pytest.approx(0.6) and schedule[-1] == pytest.approx(0.3 * 1024)


def test_no_retry_means_an_empty_schedule() -> None:
    assert backoff_schedule(DeliverySpec(retry=0)) == []


def test_retry_after_header() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


class _Target:
    url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.in_use = 0

    def acquire(self) -> str:
        self.in_use += 1
        return self.url

    def release(self) -> None:
        self.in_use -= 1


class _Sender(HttpSender):
    """Answers with the given statuses in turn (the retry loop's logic without sockets)."""

    def __init__(self, statuses: list[int | None]) -> None:
        super().__init__()
        self.statuses = list(statuses)
        self.calls = 0

    def post(self, url: str, headers: Mapping[str, str], body: bytes,
             timeout: float) -> Response:
        self.calls += 1
        status = self.statuses.pop(0)
        return Response(status, b"body" if status else b"", {}, None if status else "refused")


def _deliver(statuses: list[int | None], delivery: DeliverySpec,
             interrupted: threading.Event | None = None) -> tuple[Verdict, int, list[float]]:
    sender, target, delays = _Sender(statuses), _Target(), []
    result = deliver(sender, target, {}, b"", delivery, timeout=1.0,
                     interrupted=interrupted or threading.Event(),
                     on_retry=lambda _n, _r, delay: delays.append(delay))
    assert target.in_use == 0  # every acquire was released
    assert result.attempts == sender.calls
    return result.verdict, sender.calls, delays


FAST = DeliverySpec(retry=3, backoff_policy="linear", backoff_delay=0.001)


def test_a_retried_failure_is_tried_retry_plus_one_times() -> None:
    verdict, attempts, delays = _deliver([500, 503, None, 500], FAST)
    assert (verdict, attempts) == (Verdict.DEAD_LETTER, 4)
    assert delays == pytest.approx([0.001, 0.002, 0.003])


def test_success_after_retries() -> None:
    assert _deliver([429, 200], FAST)[:2] == (Verdict.SUCCESS, 2)


def test_a_400_is_not_retried() -> None:
    assert _deliver([400], FAST)[:2] == (Verdict.DEAD_LETTER, 1)


def test_an_interrupted_retry_wait_abandons_the_event() -> None:
    interrupted = threading.Event()
    interrupted.set()
    assert _deliver([500], FAST, interrupted)[:2] == (Verdict.ABANDONED, 1)


def test_error_extensions_like_knative() -> None:
    response = Response(500, b"x" * 2000, {"kne-reason": "db down", "content-type": "text/plain"})
    extensions = error_extensions("http://127.0.0.1:9/", response)
    assert extensions["knativeerrordest"] == "http://127.0.0.1:9/"
    assert extensions["knativeerrorcode"] == "500"
    assert base64.b64decode(extensions["knativeerrordata"]) == b"x" * 1024
    assert extensions["reason"] == "db down"
    # No response at all: only the destination, as Knative does.
    assert error_extensions("d", Response(None, error="refused")) == {"knativeerrordest": "d"}
    # An empty body adds no knativeerrordata.
    assert "knativeerrordata" not in error_extensions("d", Response(404))


CE_HEADERS: list[tuple[str, str | bytes | None]] = [
    ("ce_specversion", b"1.0"), ("ce_id", b"e-1"), ("ce_source", b"/saga/x"),
    ("ce_type", b"shop.order.created.v1"), ("content-type", b"application/json"),
    ("ce_knativeerrorcode", b"503"), ("other", b"kept")]


def test_binary_record_maps_to_http_and_back_to_the_same_event() -> None:
    message = Message(topic="t", partition=1, offset=7, key=b"order-1", value=b'{"a":1}',
                      headers=CE_HEADERS, timestamp=(1, 1_700_000_000_000))
    event = http_event(message, source_name="src", overrides={"origin": "local"})
    assert event.headers["ce-id"] == "e-1" and event.headers["ce-partitionkey"] == "order-1"
    assert event.headers["ce-origin"] == "local" and event.body == b'{"a":1}'
    headers, value = dead_letter_record(message, event, {"knativeerrorcode": "400",
                                                         "knativeerrordest": "u"})
    names = dict(headers)
    assert value == b'{"a":1}' and names["ce_id"] == b"e-1" and names["other"] == b"kept"
    assert names["ce_knativeerrorcode"] == b"400"  # the old one is replaced, not repeated
    assert [n for n, _ in headers].count("ce_knativeerrorcode") == 1


def test_a_record_that_is_no_cloudevent_is_wrapped_like_knative() -> None:
    message = Message(topic="plain", partition=2, offset=9, key=b"k", value=b"hello",
                      headers=[("X-Trace", b"abc")], timestamp=(1, 1_700_000_000_000))
    event = http_event(message, source_name="src")
    assert event.wrapped
    assert event.headers["ce-type"] == KAFKA_EVENT_TYPE
    assert event.headers["ce-id"] == "partition:2/offset:9"
    assert event.headers["ce-source"] == "/apis/v1/namespaces/default/kafkasources/src#plain"
    assert event.headers["ce-subject"] == "partition:2#9"
    assert event.headers["ce-key"] == "k" and event.headers["ce-xtrace"] == "abc"
    assert event.headers["ce-time"].startswith("2023-11-14T22:13:20")
