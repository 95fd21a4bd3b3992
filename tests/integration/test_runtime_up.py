"""`run_up` end to end on a small set of manifests (an HTTP ingress, an event function, a
KafkaSource with a dead-letter KafkaSink, a PingSource, a catalogue), against the session's
real PostgreSQL and broker; the catalogue seed, the cluster's own file through the
bootstrap Job's import; and the outbox re-publishing the embedded broker needs."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from cloudevents.http import CloudEvent
from confluent_kafka import Producer
from pydantic import SecretStr
from sqlalchemy import create_engine, pool, text

from common.cloudevents_kafka import attributes_of, to_kafka
from common.kafka import producer_config
from common.migrate import upgrade
from common.settings import to_sqlalchemy_url
from tests.helpers import read_topic, wait_for
from tests.integration.runtime_support import ECHO, knative_service, write_manifests
from tools import REPO_ROOT
from tools.infra.kafka_clients import ensure_topics
from tools.infra.ports import free_port, port_is_free
from tools.runtime.recovery import republish_unfinished
from tools.runtime.seed import seed_catalogue
from tools.runtime.state import read_state
from tools.runtime.up import run_up
from tools.settings import LocalSettings

pytestmark = pytest.mark.integration

def _manifests(root: Path, topic: str, record: Path) -> None:
    def service(name: str, target: str, signature: str, min_scale: int, public: bool,
                initial_scale: int = 1) -> dict[str, Any]:
        return knative_service(
            name, target=target, source=ECHO, signature=signature, public=public,
            env={"RUNTIME_ECHO_RECORD": str(record), "THREADS": "2"},
            annotations={"autoscaling.knative.dev/min-scale": str(min_scale),
                         "autoscaling.knative.dev/initial-scale": str(initial_scale)})
    files: dict[str, str | dict[str, Any]] = {
        "knative/web.yaml": service("web", "health", "http", 1, public=True),
        "knative/echo.yaml": service("echo", "echo", "cloudevent", 0, public=False),
        "knative/lazy.yaml": service("lazy", "echo", "cloudevent", 0, public=False,
                                     initial_scale=0),
        "knative/dls.yaml": f"""
            apiVersion: eventing.knative.dev/v1alpha1
            kind: KafkaSink
            metadata: {{name: dls}}
            spec: {{topic: {topic}.dlq, bootstrapServers: [x:9092]}}
        """,
        "knative/tick.yaml": """
            apiVersion: sources.knative.dev/v1
            kind: PingSource
            metadata: {name: tick}
            spec:
              schedule: "0 0 1 1 *"
              data: '{"job": "yearly"}'
              sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: echo}}
        """,
        "knative/lazy-tick.yaml": """
            apiVersion: sources.knative.dev/v1
            kind: PingSource
            metadata: {name: lazy-tick}
            spec:
              schedule: "0 0 1 1 *"
              sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: lazy}}
        """,
        "knative/kustomization.yaml": "resources: [web.yaml]\n",
        "knative/cluster/catalogue.json": json.dumps({"products": [
            {"sku": "UP-001", "name": "Seeded", "description": "from the catalogue",
             "price": "1.50", "initial_stock": 3}]}),
        "kafka-sources/echo.yaml": f"""
            apiVersion: sources.knative.dev/v1beta1
            kind: KafkaSource
            metadata: {{name: echo}}
            spec:
              consumerGroup: g-{topic}
              bootstrapServers: [x:9092]
              topics: [{topic}]
              initialOffset: earliest
              delivery:
                retry: 1
                backoffDelay: PT0.05S
                deadLetterSink:
                  ref: {{apiVersion: eventing.knative.dev/v1alpha1, kind: KafkaSink, name: dls}}
              sink: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: echo}}}}
        """,
    }
    write_manifests(root, files)


def test_up_runs_the_manifests_and_leaves_nothing_behind(
        tmp_path: Path, fresh_database: Callable[[str], str], settings: LocalSettings) -> None:
    topic = f"up-{uuid.uuid4().hex[:8]}"
    record = tmp_path / "received.ndjson"
    _manifests(tmp_path, topic, record)
    database_url = fresh_database("runtime_up")
    settings = settings.model_copy(update={
        "database_url": SecretStr(database_url), "api_port": free_port(),
        "state_dir": tmp_path / "state", "jwt_secret": SecretStr("runtime-test-secret")})
    ready, stop = threading.Event(), threading.Event()
    outcome: dict[str, int] = {}
    runner = threading.Thread(target=lambda: outcome.setdefault(
        "code", run_up(settings, root=tmp_path, ready=ready, stop=stop)))
    runner.start()
    try:
        wait_for(lambda: ready.is_set() or not runner.is_alive(), timeout=60,
                 message="run_up to become ready")
        assert ready.is_set(), f"run_up ended with {outcome.get('code')} before it was ready"
        url = f"http://127.0.0.1:{settings.api_port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as reply:
            assert reply.status == 200
        state = read_state(tmp_path / "state")
        assert state is not None and state["phase"] == "running"
        assert state["functions"]["web"]["state"] == "running"
        assert state["control"]["url"].startswith("http://127.0.0.1:")
        assert _stock(database_url) == {"UP-001": ("1.50", 3)}  # its root's catalogue
        # Like a new Knative revision, echo (min-scale 0) starts with the runtime (initial
        # scale 1), in the background; lazy (initial-scale "0") waits for its first event.
        wait_for(lambda: (read_state(tmp_path / "state") or {})["functions"]["echo"]["state"]
                 == "running", message="echo started with the runtime")
        assert state["functions"]["lazy"]["state"] == "not_started"
        assert (tmp_path / "state" / "logs" / "web.ndjson").exists()

        producer = Producer(producer_config(settings))
        for event_id, data in ((f"{topic}-ok", {"n": 1}), (f"{topic}-bad", {"status": 400})):
            event = CloudEvent({"id": event_id, "source": "/saga/test", "type": "shop.test.v1",
                                "partitionkey": "k", "datacontenttype": "application/json"},
                               data)
            out = to_kafka(event, topic)
            producer.produce(out.topic, out.value, out.key, headers=out.headers)
        assert producer.flush(10) == 0
        producer.close()
        wait_for(lambda: record.exists() and f"{topic}-ok" in record.read_text(), timeout=30,
                 message="the event delivered through the KafkaSource")
        dead = read_topic(settings, f"{topic}.dlq", lambda e: e["id"] == f"{topic}-bad")
        assert dead["knativeerrorcode"] == "400"

        def sources_recorded() -> dict[str, Any] | None:
            current = read_state(tmp_path / "state")
            source = (current or {}).get("sources", {}).get("echo")
            return source if source and source["dead_lettered"] == 1 else None

        source = wait_for(sources_recorded, message="source counters in runtime-state.json")
        assert source["consumer_group"] == f"g-{topic}" and source["delivered"] == 1
        state = read_state(tmp_path / "state")
        assert state is not None
        pids = [f["pid"] for f in state["functions"].values() if f["pid"]]
        assert len(pids) == 2  # web and echo; lazy never had an event
        assert state["functions"]["lazy"]["state"] == "not_started"
    finally:
        stop.set()
        runner.join(60)
    assert outcome.get("code") == 0
    final = read_state(tmp_path / "state")
    assert final is not None and final["phase"] == "stopped"
    assert all(f["state"] == "stopped" for f in final["functions"].values())
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in pids)
    assert port_is_free(settings.api_port)


def test_a_stop_while_waiting_for_the_api_ends_the_start_at_once(
        tmp_path: Path, fresh_database: Callable[[str], str], settings: LocalSettings,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C (the stop the signal handler sets) while `up` waits for an API that is not
    healthy (here: never) ends the wait at once and unwinds what was started, instead of
    waiting out the 60 s health wait or being forced. The same wait (phases.wait_until)
    holds the start's other wait, for the sources' partitions."""
    hits = tmp_path / "healthz.log"
    write_manifests(tmp_path, {
        "knative/web.yaml": knative_service(
            "web", target="health", source=ECHO, signature="http", public=True,
            env={"RUNTIME_ECHO_UNHEALTHY": "1", "RUNTIME_ECHO_HEALTH_RECORD": str(hits)}),
        "knative/kustomization.yaml": "resources: [web.yaml]\n"})
    settings = settings.model_copy(update={
        "database_url": SecretStr(fresh_database("runtime_stop")), "api_port": free_port(),
        "state_dir": tmp_path / "state", "jwt_secret": SecretStr("runtime-test-secret")})
    ready, stop = threading.Event(), threading.Event()
    outcome: dict[str, int] = {}
    runner = threading.Thread(target=lambda: outcome.setdefault(
        "code", run_up(settings, root=tmp_path, ready=ready, stop=stop)))
    runner.start()
    try:
        def waiting_for_the_api() -> bool:
            return (hits.exists() and "503" in hits.read_text()) or not runner.is_alive()

        wait_for(waiting_for_the_api, timeout=60, message="up to wait for the API's /healthz")
        assert runner.is_alive(), f"run_up ended with {outcome.get('code')}"
        web = (read_state(tmp_path / "state") or {})["functions"]["web"]["pid"]
    finally:
        stop.set()
        stopped_at = time.monotonic()
        runner.join(60)
    took = time.monotonic() - stopped_at
    console = capsys.readouterr().out
    assert outcome.get("code") == 0, console
    assert took < 10, f"the start took {took:.1f} s to end after the stop:\n{console}"
    assert "up: stopped while starting" in console and "order saga is up" not in console
    assert not ready.is_set()
    assert (read_state(tmp_path / "state") or {})["phase"] == "stopped"
    assert not (psutil.pid_exists(web) and psutil.Process(web).status() != "zombie")
    assert port_is_free(settings.api_port)


def _stock(url: str) -> dict[str, tuple[str, int]]:
    engine = create_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT p.sku, p.price, s.on_hand FROM inventory.products p "
                "JOIN inventory.stock s USING (sku)"))
            return {row.sku: (str(row.price), row.on_hand) for row in rows}
    finally:
        engine.dispose()


def test_the_local_catalogue_is_the_clusters_imported_once(
        fresh_database: Callable[[str], str]) -> None:
    url = fresh_database("runtime_seed")
    upgrade(url)
    listed = json.loads((REPO_ROOT / "knative/cluster/catalogue.json").read_text())["products"]
    assert seed_catalogue(url, REPO_ROOT) == len(listed)
    expected = {p["sku"]: (p["price"], p["initial_stock"]) for p in listed}
    assert _stock(url) == expected
    # The demo's scarce product is there, as scarce as the demo expects.
    assert expected["RARE-005"] == ("99.00", 2)
    assert seed_catalogue(url, REPO_ROOT) == 0  # a second start adds nothing
    assert _stock(url) == expected


def test_a_manifest_error_stops_up_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "kafka-sources").mkdir()
    (tmp_path / "kafka-sources" / "bad.yaml").write_text(json.dumps({
        "apiVersion": "sources.knative.dev/v1beta1", "kind": "KafkaSource",
        "metadata": {"name": "bad"},
        "spec": {"topics": ["t"], "sink": {"ref": {"apiVersion": "serving.knative.dev/v1",
                                                   "kind": "Service", "name": "ghost"}}}}))
    settings = LocalSettings().model_copy(update={"state_dir": tmp_path / "state"})
    assert run_up(settings, root=tmp_path) == 2
    assert not (tmp_path / "state").exists()


def test_outbox_of_unfinished_orders_is_published_again(
        fresh_database: Callable[[str], str], settings: LocalSettings) -> None:
    url = fresh_database("runtime_recovery")
    upgrade(url)
    open_order, done_order = uuid.uuid4(), uuid.uuid4()
    engine = create_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)
    events = {}
    with engine.begin() as connection:
        for order, status in ((open_order, "AWAITING_PAYMENT"), (done_order, "COMPLETED")):
            connection.execute(text(
                "INSERT INTO orders.orders (id, customer_id, status, payment_mode, total) "
                "VALUES (:id, 'c', :status, 'auto', 10)"), {"id": order, "status": status})
            event = CloudEvent({"id": str(uuid.uuid4()), "source": "/saga/api",
                                "type": "shop.order.created.v1", "partitionkey": str(order),
                                "subject": str(order), "datacontenttype": "application/json"},
                               {"order_id": str(order)})
            events[order] = event
            connection.execute(text(
                "INSERT INTO messaging.outbox (id, topic, event_type, partition_key, attributes,"
                " data, producer, published_at) VALUES (:id, :topic, :type, :key,"
                " CAST(:attributes AS jsonb), CAST(:data AS jsonb), 'api', now())"),
                {"id": event["id"], "topic": f"recovery-{order}", "type": event["type"],
                 "key": str(order), "attributes": json.dumps(attributes_of(event)),
                 "data": json.dumps(event.get_data())})
    engine.dispose()
    # The runtime creates its topics before it re-publishes (Kafka creates none on demand).
    ensure_topics(settings, [f"recovery-{order}" for order in events])
    assert republish_unfinished(settings, url) == 1
    again = read_topic(settings, f"recovery-{open_order}",
                       lambda e: e["id"] == events[open_order]["id"])
    assert again["partitionkey"] == str(open_order)
    assert again.get_data() == {"order_id": str(open_order)}
