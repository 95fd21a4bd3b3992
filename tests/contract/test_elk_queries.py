"""The dashboards' queries return what they claim, run against osmem-server (an in-memory
OpenSearch-API server, started here on a free loopback port) with the index template's
mappings applied.

Two indices match the data view's logs-saga-*: `live` holds the real lines of
test_log_contract_live.drive_functions, `workload` a generated multi-order workload of
contract-valid lines whose every count is known. Each panel's request is what
test_elk_kql.py compiles from the saved object itself; exact expectations are checked on
the workload, and the panels must also answer over both indices together.

Not verified here (needs a real Elasticsearch and Kibana): data streams, ILM, Elastic's
built-in logs@/ecs@ templates, match_only_text and constant_keyword (OpenSearch has
neither; the test maps them to text and keyword), and how Kibana renders the panels.
"""

from __future__ import annotations

import copy
import json
import socket
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opensearchpy import OpenSearch
from osmem_server import OsmemServer

from common.logging import ECS_VERSION
from common.settings import Settings
from tests.contract import MAPPINGS, load_json, mapped_fields, saved_objects
from tests.contract.test_elk_kql import MISSING, lens_request, lens_rows, search_request
from tests.contract.test_log_contract_live import Driven, drive_functions
from tools.log_contract import flatten, violations

pytestmark = pytest.mark.integration

LIVE, WORKLOAD = "logs-saga-live", "logs-saga-workload"
OBJECTS = {o["id"]: o for o in saved_objects()}
DEST = "http://inventory.saga.svc.cluster.local"
NOW = datetime.now(UTC)


# --- the generated workload --------------------------------------------------------------


class Workload:
    """Contract-valid lines of a few orders with known fates; `docs` are flattened."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.orders: dict[str, str] = {}  # order id -> fate
        self.traces: dict[str, str] = {}  # order id -> the trace its lines are in now
        self.confirmed = ""  # the order paid by a request of its own (confirm mode)
        self._clock = NOW - timedelta(minutes=50)
        self._n = 0

    def line(self, service: str, action: str, outcome: str = "success", *,
             order: str | None = None, level: str = "info", **fields: Any) -> dict[str, Any]:
        self._clock += timedelta(seconds=7)
        self._n += 1
        doc = {"@timestamp": self._clock.isoformat().replace("+00:00", "Z"),
               "log.level": level, "message": f"{service} {action}",
               "ecs.version": ECS_VERSION, "service.name": service, "event.action": action,
               "event.outcome": outcome}
        if order is not None:
            doc |= {"labels.order_id": order,
                    "trace.id": self.traces.get(order, order.replace("-", "")),
                    "span.id": f"{self._n:016x}"}
        doc |= {k.replace("__", "."): v for k, v in fields.items()}
        problems = violations(doc)
        assert not problems, (doc, problems)  # the workload keeps the contract too
        self.docs.append(doc)
        return doc

    def step(self, service: str, order: str, step: str, event_type: str, *,
             action: str = "saga.step.completed", ms: int = 20, **fields: Any) -> None:
        outcome = "failure" if action in ("saga.step.failed", "saga.step.retried") else "success"
        self.line(service, action, outcome, order=order, event__duration=ms * 1_000_000,
                  labels__saga_step=step, cloudevents__id=f"ev-{self._n}",
                  cloudevents__type=f"shop.{event_type}.v1",
                  cloudevents__source="/saga/test", **fields)

    def status(self, service: str, order: str, status: str, before: str | None = None,
               reason: str | None = None) -> None:
        extra = {"labels__order_status_from": before} if before else {}
        if reason:
            extra["labels__cancel_reason"] = reason
        self.line(service, "saga.order.status_changed", order=order,
                  labels__order_status=status, **extra)

    def request(self, order: str, method: str, path: str, status: int = 201,
                **fields: Any) -> dict[str, Any]:
        return self.line("api", "http.request", order=order, http__request__method=method,
                         url__path=path, http__response__status_code=status,
                         event__duration=4_000_000, user__id="alice", **fields)

    def order(self, fate: str, *, confirm: bool = False) -> str:
        order = f"00000000-0000-4000-8000-{len(self.orders):012d}"
        self.orders[order] = fate
        placed = self.request(order, "POST", "/orders")
        self.status("api", order, "CREATED")
        if fate == "out_of_stock":
            self.step("inventory", order, "reserve", "order.created", ms=30)
            self.step("order-saga", order, "cancel", "stock.rejected", ms=15)
            self.status("order-saga", order, "CANCELLED", "CREATED", "out_of_stock")
            return order
        self.step("inventory", order, "reserve", "order.created", ms=40)
        self.status("order-saga", order, "AWAITING_PAYMENT", "CREATED")
        if fate == "payment_timeout":
            self.line("timeouts", "saga.stuck", "unknown", order=order,
                      labels__order_status="AWAITING_PAYMENT", labels__idle_s="700")
            self.status("timeouts", order, "CANCELLED", "AWAITING_PAYMENT", "payment_timeout")
            self.step("inventory", order, "release", "order.cancelled",
                      action="saga.compensation.released")
            return order
        if confirm:  # the customer pays: a trace of its own, linked to the order's
            self.confirmed = order
            self.traces[order] = f"{len(self.orders):032x}"
            self.request(order, "POST", f"/orders/{order}/pay", 202, span__links=[
                {"trace": {"id": placed["trace.id"]}, "span": {"id": placed["span.id"]}}])
            self.status("api", order, "PAYMENT_PROCESSING", "AWAITING_PAYMENT")
        else:
            self.status("order-saga", order, "PAYMENT_PROCESSING", "AWAITING_PAYMENT")
            self.step("order-saga", order, "request_payment", "stock.reserved", ms=25)
        if fate == "insufficient_funds":
            self.step("payments", order, "charge", "payment.requested", ms=60)
            self.step("order-saga", order, "cancel", "payment.failed")
            self.status("order-saga", order, "CANCELLED", "PAYMENT_PROCESSING",
                        "insufficient_funds")
            self.step("inventory", order, "release", "order.cancelled",
                      action="saga.compensation.released")
            return order
        self.step("payments", order, "charge", "payment.requested", ms=80)
        self.status("order-saga", order, "PAID", "PAYMENT_PROCESSING")
        self.step("order-saga", order, "paid", "payment.completed")
        self.step("inventory", order, "commit", "order.paid", ms=35)
        if fate == "shipping_failed":
            self.step("shipping", order, "ship.failed", "order.paid", ms=90)
            self.status("order-saga", order, "CANCELLED", "PAID", "shipping_failed")
            self.step("inventory", order, "return", "order.cancelled",
                      action="saga.compensation.returned")
            self.step("payments", order, "refund", "order.cancelled",
                      action="saga.compensation.refunded")
            return order
        self.step("shipping", order, "ship", "order.paid", ms=120)
        self.step("order-saga", order, "complete", "shipment.dispatched")
        self.status("order-saga", order, "COMPLETED", "PAID")
        self.step("notifications", order, "notify.completed", "order.completed", ms=10)
        return order

    @classmethod
    def build(cls) -> Workload:
        w = cls()
        w.line("inventory", "saga.cold_start", event__duration=1_800_000_000)
        w.line("payments", "saga.cold_start", event__duration=2_400_000_000)
        first = w.order("completed")
        # The same order's event redelivered, a transient fault retried, a refusal.
        w.step("inventory", first, "order.created", "order.created",
               action="saga.step.skipped_duplicate", ms=3)
        w.order("completed", confirm=True)
        for fate in ("completed", "out_of_stock", "insufficient_funds", "payment_timeout",
                     "shipping_failed"):
            w.order(fate)
        w.step("payments", first, "payment.requested", "payment.requested",
               action="saga.step.retried", level="warning",
               error__type="temporarily unavailable", error__message="OperationalError",
               http__response__status_code=503)
        w.step("inventory", first, "order.created", "order.created",
               action="saga.step.failed", level="warning",
               error__type="event data violates its schema", error__message="items: required",
               http__response__status_code=422)
        for duplicate in ("false", "true"):
            w.line("dlq", "saga.dlq", order=first, level="warning",
                   cloudevents__id="dead-1", cloudevents__type="shop.order.created.v1",
                   cloudevents__source="/saga/api", labels__error_dest=DEST,
                   labels__error_code="422", labels__duplicate=duplicate)
        return w

    def count(self, predicate: Callable[[dict[str, Any]], bool], key: str) -> Counter[Any]:
        return Counter(d.get(key) for d in self.docs if predicate(d))


def _is_step(d: dict[str, Any]) -> bool:
    return str(d["event.action"]).startswith(("saga.step.", "saga.compensation."))


# --- the server --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _opensearch_mappings() -> dict[str, Any]:
    """The template's mappings with the two Elasticsearch-only types OpenSearch lacks."""
    mappings: dict[str, Any] = copy.deepcopy(load_json(MAPPINGS))["template"]["mappings"]

    def convert(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "match_only_text":
                node["type"] = "text"
            if node.get("type") == "constant_keyword":
                node["type"] = "keyword"
            for value in node.values():
                convert(value)

    convert(mappings)
    return mappings


@pytest.fixture(scope="module")
def search() -> Iterator[OpenSearch]:
    with OsmemServer.start(addr=f"127.0.0.1:{_free_port()}", japanese=False) as server:
        client = OpenSearch(hosts=[server.url], timeout=30)
        client.cluster.put_component_template(
            name="saga-logs@mappings", body={"template": {"mappings": _opensearch_mappings()}})
        template = load_json(MAPPINGS.parent / "index-template.json")
        # No data streams in osmem: a plain index per data set, same template otherwise.
        client.indices.put_index_template(name="logs-saga", body={
            "index_patterns": template["index_patterns"], "priority": template["priority"],
            "composed_of": ["saga-logs@mappings"]})
        yield client


@pytest.fixture(scope="module")
def workload() -> Workload:
    return Workload.build()


@pytest.fixture(scope="module")
def _loaded() -> dict[str, Any]:
    return {}


def _bulk(client: OpenSearch, index: str, docs: list[dict[str, Any]]) -> None:
    body: list[dict[str, Any]] = []
    for doc in docs:
        body += [{"create": {"_index": index}}, doc]
    answer = client.bulk(body=body, refresh=True)
    assert not answer["errors"], [i for i in answer["items"] if "error" in i["create"]][:3]


@pytest.fixture
def loaded(_loaded: dict[str, Any], search: OpenSearch, workload: Workload,
           saga_env: Settings, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> tuple[OpenSearch, Workload, Driven]:
    """Both indices, loaded once per module (the functions are driven once)."""
    if not _loaded:
        live = drive_functions(saga_env, monkeypatch, capsys)
        _bulk(search, LIVE, [json.loads(line) for line in live.lines])
        _bulk(search, WORKLOAD, workload.docs)
        _loaded["live"] = live
    return search, workload, _loaded["live"]


def _lens(client: OpenSearch, panel: str, index: str,
          filters: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    lens = OBJECTS[panel]
    return lens_rows(lens, client.search(index=index, body=lens_request(lens, filters or [])))


def _hits(client: OpenSearch, panel: str, index: str,
          filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answer = client.search(index=index, body=search_request(OBJECTS[panel], filters))
    return [flatten(h["_source"]) for h in answer["hits"]["hits"]]


def _pick(order: str) -> list[dict[str, Any]]:
    """The filter the trail dashboard's options-list control adds for a picked order."""
    return [{"term": {"labels.order_id": order}}]


# --- tests -------------------------------------------------------------------------------


def test_the_template_maps_the_loaded_lines(
        loaded: tuple[OpenSearch, Workload, Driven]) -> None:
    client = loaded[0]
    for index in (LIVE, WORKLOAD):
        properties = client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
        fields = mapped_fields(properties)
        assert fields["event.duration"] == "long" and fields["labels.order_id"] == "keyword"
        assert fields["@timestamp"] == "date" and fields["trace.id"] == "keyword"


LENS_PANELS = sorted(i for i, o in OBJECTS.items() if o["type"] == "lens")


@pytest.mark.parametrize("panel", LENS_PANELS)
def test_every_panel_answers_over_the_data_view(
        loaded: tuple[OpenSearch, Workload, Driven], panel: str) -> None:
    client, workload, _ = loaded
    rows = _lens(client, panel, "logs-saga-*")
    assert rows, f"{panel} draws nothing over logs-saga-*"
    if panel.startswith("saga-order-trail"):
        first = next(iter(workload.orders))
        assert _lens(client, panel, "logs-saga-*", _pick(first)), panel


def test_orders_placed_per_minute(loaded: tuple[OpenSearch, Workload, Driven]) -> None:
    client, workload, _ = loaded
    rows = _lens(client, "saga-orders-per-minute", WORKLOAD)
    assert sum(r["n"] for r in rows) == len(workload.orders)
    assert all(r["n"] >= 1 for r in rows)  # minute buckets with orders in them
    every = _lens(client, "saga-orders-per-minute", "logs-saga-*")
    assert sum(r["n"] for r in every) >= len(workload.orders) + 1  # + the live API order


def test_terminal_outcomes_by_reason(loaded: tuple[OpenSearch, Workload, Driven]) -> None:
    client, workload, _ = loaded
    rows = _lens(client, "saga-order-outcomes", WORKLOAD)
    got = {(r["status"], r["reason"]): r["n"] for r in rows}
    fates = Counter(workload.orders.values())
    expected = {("COMPLETED", MISSING): fates["completed"]} | {
        ("CANCELLED", fate): n for fate, n in fates.items() if fate != "completed"}
    assert got == expected


def test_step_throughput_and_latency_by_function(
        loaded: tuple[OpenSearch, Workload, Driven]) -> None:
    client, workload, _ = loaded
    per_function: Counter[str] = Counter()
    for row in _lens(client, "saga-step-throughput", WORKLOAD):
        per_function[row["fn"]] += row["n"]
    assert per_function == workload.count(_is_step, "service.name")
    latency = {r["fn"]: r for r in _lens(client, "saga-step-latency", WORKLOAD)}
    for fn, row in latency.items():
        durations = [d["event.duration"] for d in workload.docs if d["service.name"] == fn
                     and d["event.action"].startswith(("saga.step.completed",
                                                       "saga.compensation."))]
        assert row["n"] == len(durations), fn
        assert min(durations) <= row["p50"] <= row["p95"] <= max(durations), (fn, row)
        assert row["p50"] == pytest.approx(statistics.median(durations), rel=0.5)
    assert set(latency) == {"inventory", "order-saga", "payments", "shipping", "notifications"}


def test_failures_dead_letters_compensations_cold_starts_stuck(
        loaded: tuple[OpenSearch, Workload, Driven]) -> None:
    client = loaded[0]
    kinds = Counter[str]()
    for row in _lens(client, "saga-failures-retries", WORKLOAD):
        kinds[row["what"]] += row["n"]
    assert kinds == {"saga.step.failed": 1, "saga.step.retried": 1}
    [dead] = _lens(client, "saga-dead-letters", WORKLOAD)
    assert dead["n"] == 1  # the duplicate delivery of the same dead letter is not counted
    compensations = {(r["kind"], r["fn"]): r["n"]
                     for r in _lens(client, "saga-compensations", WORKLOAD)}
    assert compensations == {("saga.compensation.released", "inventory"): 2,
                             ("saga.compensation.returned", "inventory"): 1,
                             ("saga.compensation.refunded", "payments"): 1}
    cold = {r["fn"]: r for r in _lens(client, "saga-cold-starts", WORKLOAD)}
    assert {fn: r["n"] for fn, r in cold.items()} == {"inventory": 1, "payments": 1}
    assert cold["payments"]["p50"] == pytest.approx(2.4e9)
    [stuck] = _lens(client, "saga-stuck-orders", WORKLOAD)
    assert stuck["n"] == 1


def test_one_orders_trail(loaded: tuple[OpenSearch, Workload, Driven]) -> None:
    client, workload, _ = loaded
    order = next(o for o, fate in workload.orders.items() if fate == "completed")
    statuses = _lens(client, "saga-order-trail-statuses", "logs-saga-*", _pick(order))
    assert [r["status"] for r in statuses] == [
        "CREATED", "AWAITING_PAYMENT", "PAYMENT_PROCESSING", "PAID", "COMPLETED"]
    functions = _lens(client, "saga-order-trail-functions", "logs-saga-*", _pick(order))
    assert [r["fn"] for r in functions] == [
        "inventory", "order-saga", "payments", "shipping", "notifications"]
    lines = _hits(client, "saga-order-trail-lines", "logs-saga-*", _pick(order))
    mine = [d for d in workload.docs if d.get("labels.order_id") == order]
    assert len(lines) == len(mine)
    stamps = [d["@timestamp"] for d in lines]
    assert stamps == sorted(stamps)  # in time order
    assert {d["trace.id"] for d in lines} == {order.replace("-", "")}  # one trace


def test_a_confirm_orders_trail_names_its_two_traces_and_the_link(
        loaded: tuple[OpenSearch, Workload, Driven]) -> None:
    client, workload, _ = loaded
    order = workload.confirmed
    own, paid = order.replace("-", ""), workload.traces[order]
    mine = [d for d in workload.docs if d.get("labels.order_id") == order]
    traces = _lens(client, "saga-order-trail-traces", "logs-saga-*", _pick(order))
    assert [(r["trace"], r["n"]) for r in traces] == [  # in the order they began
        (trace, sum(d["trace.id"] == trace for d in mine)) for trace in (own, paid)]
    requests = _hits(client, "saga-order-trail-requests", "logs-saga-*", _pick(order))
    assert [(d["url.path"], d["trace.id"], d.get("span.links.trace.id")) for d in requests] == [
        ("/orders", own, None), (f"/orders/{order}/pay", paid, [own])]
    lines = _hits(client, "saga-order-trail-lines", "logs-saga-*", _pick(order))
    statuses = [(d["labels.order_status"], d["trace.id"]) for d in lines
                if d["event.action"] == "saga.order.status_changed"]
    assert statuses == [("CREATED", own), ("AWAITING_PAYMENT", own),
                        ("PAYMENT_PROCESSING", paid), ("PAID", paid), ("COMPLETED", paid)]


def test_the_live_api_orders_trail(loaded: tuple[OpenSearch, Workload, Driven]) -> None:
    client, _, live = loaded
    lines = _hits(client, "saga-order-trail-lines", "logs-saga-*", _pick(live.api_order))
    assert {d["service.name"] for d in lines} >= {"api", "order-saga"}
    assert {d["trace.id"] for d in lines} == {live.api_trace}
    statuses = _lens(client, "saga-order-trail-statuses", "logs-saga-*", _pick(live.api_order))
    assert [r["status"] for r in statuses] == [
        "CREATED", "AWAITING_PAYMENT", "PAYMENT_PROCESSING"]


def test_the_errors_dashboard(loaded: tuple[OpenSearch, Workload, Driven]) -> None:
    client, workload, _ = loaded
    failed = {(r["fn"], r["kind"], r["type"], r["message"]): r["n"]
              for r in _lens(client, "saga-failed-steps", WORKLOAD)}
    assert failed == {
        ("payments", "saga.step.retried", "temporarily unavailable", "OperationalError"): 1,
        ("inventory", "saga.step.failed", "event data violates its schema",
         "items: required"): 1}
    every = _lens(client, "saga-failed-steps", "logs-saga-*")
    assert ("inventory", "saga.step.failed") in {(r["fn"], r["kind"]) for r in every}  # live
    [dlq] = _lens(client, "saga-dlq-entries", WORKLOAD)
    assert (dlq["type"], dlq["dest"], dlq["code"], dlq["n"]) == (
        "shop.order.created.v1", DEST, "422", 2)
    by_function: Counter[str] = Counter()
    for row in _lens(client, "saga-failures-by-function", WORKLOAD):
        by_function[row["fn"]] += row["n"]
    assert by_function == workload.count(lambda d: d["event.outcome"] == "failure",
                                         "service.name")
    errors = _hits(client, "saga-error-lines", WORKLOAD, [])
    stamps = [d["@timestamp"] for d in errors]
    assert stamps == sorted(stamps, reverse=True) and len(errors) == sum(by_function.values())
