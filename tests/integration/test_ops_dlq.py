"""Dead letters end to end on `run_up` with a small set of manifests: a function that
refuses (400) or fails (500) while its cause is not fixed, its KafkaSource dead-lettering
to a KafkaSink, and the project's real dlq function storing the letters. Then `saga dlq`
lists, shows and re-drives them through the CLI, in-process."""

from __future__ import annotations

import itertools
import json
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from confluent_kafka import Producer
from pydantic import SecretStr
from sqlalchemy import create_engine, pool, text

from common.cloudevents_kafka import to_kafka
from common.kafka import producer_config
from common.settings import to_sqlalchemy_url
from tests.helpers import run_saga, wait_for
from tests.integration.runtime_support import ECHO, knative_service, write_manifests
from tools import REPO_ROOT
from tools.infra.ports import free_port
from tools.runtime.up import run_up
from tools.settings import LocalSettings

pytestmark = pytest.mark.integration

FLAKY = '''
import json, os, time
import flask, functions_framework

@functions_framework.cloud_event
def flaky(event):
    data = event.get_data()
    with open(os.environ["FLAKY_RECORD"], "a") as out:
        out.write(json.dumps({"attributes": {k: str(v) for k, v in
                                             event.get_attributes().items()},
                              "data": data, "at": time.time()}) + "\\n")
    if isinstance(data, dict) and data.get("status") and not os.path.exists(
            os.environ["FLAKY_FIXED"]):
        flask.abort(flask.Response(f"refused with {data['status']}", data["status"]))
'''


def _source(name: str, topic: str, sink: str, delivery: str) -> str:
    return textwrap.dedent(f"""
        apiVersion: sources.knative.dev/v1beta1
        kind: KafkaSource
        metadata: {{name: {name}}}
        spec:
          consumerGroup: g-{name}-{topic}
          bootstrapServers: [x:9092]
          topics: [{topic}]
          initialOffset: earliest
          sink: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: {sink}}}}}
        """) + textwrap.indent(textwrap.dedent(delivery), "  ")


def _manifests(root: Path, topic: str, record: Path, fixed: Path) -> None:
    flaky = root / "flaky.py"
    flaky.write_text(FLAKY)
    files: dict[str, str | dict[str, Any]] = {
        "knative/web.yaml": knative_service("web", target="health", source=ECHO,
                                            signature="http", public=True),
        "knative/flaky.yaml": knative_service(
            "flaky", target="flaky", source=str(flaky), signature="cloudevent",
            env={"FLAKY_RECORD": str(record), "FLAKY_FIXED": str(fixed)}),
        "knative/dlq.yaml": knative_service(
            "dlq", target="dlq", source=str(REPO_ROOT / "functions/dlq/main.py"),
            signature="cloudevent"),
        "knative/dls.yaml": f"""
            apiVersion: eventing.knative.dev/v1alpha1
            kind: KafkaSink
            metadata: {{name: dls}}
            spec: {{topic: {topic}.dlq, bootstrapServers: [x:9092]}}
        """,
        # The 500 is retried 3 times, 0.1 s apart and growing linearly; the 400 never.
        "kafka-sources/flaky.yaml": _source("flaky", topic, "flaky", """
            delivery:
              retry: 3
              backoffPolicy: linear
              backoffDelay: PT0.1S
              deadLetterSink:
                ref: {apiVersion: eventing.knative.dev/v1alpha1, kind: KafkaSink, name: dls}
        """),
        "kafka-sources/dlq.yaml": _source("dlq", f"{topic}.dlq", "dlq", """
            delivery: {retry: 5, backoffDelay: PT0.1S}
        """),
    }
    write_manifests(root, files)


@pytest.fixture
def stack(tmp_path: Path, fresh_database: Callable[[str], str], settings: LocalSettings,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    topic = f"poison-{uuid.uuid4().hex[:8]}"
    record, fixed = tmp_path / "received.ndjson", tmp_path / "fixed"
    _manifests(tmp_path, topic, record, fixed)
    settings = settings.model_copy(update={
        "database_url": SecretStr(fresh_database("ops_dlq")), "api_port": free_port(),
        "state_dir": tmp_path / "state", "jwt_secret": SecretStr("ops-dlq-test-secret")})
    assert settings.database_url is not None and settings.kafka_bootstrap_servers
    # The CLI, run in-process, reads the same database, broker and state dir.
    for name, value in {"DATABASE_URL": settings.database_url.get_secret_value(),
                        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                        "SAGA_KAFKA_BROKER_KIND": settings.kafka_broker_kind,
                        "SAGA_STATE_DIR": str(tmp_path / "state")}.items():
        monkeypatch.setenv(name, value)
    ready, stop = threading.Event(), threading.Event()
    runner = threading.Thread(target=run_up, args=(settings,),
                              kwargs={"root": tmp_path, "ready": ready, "stop": stop})
    runner.start()
    try:
        wait_for(lambda: ready.is_set() or not runner.is_alive(), timeout=60,
                 message="run_up to become ready")
        assert ready.is_set()
        yield {"settings": settings, "topic": topic, "record": record, "fixed": fixed}
    finally:
        stop.set()
        runner.join(60)


def _received(record: Path, event_id: str) -> list[dict[str, Any]]:
    lines = record.read_text().splitlines() if record.exists() else []
    return [doc for doc in map(json.loads, lines) if doc["attributes"]["id"] == event_id]


def _dead_letters(settings: LocalSettings) -> list[Any]:
    assert settings.database_url is not None
    engine = create_engine(to_sqlalchemy_url(settings.database_url.get_secret_value()),
                           poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT * FROM messaging.dead_letters ORDER BY id")))
    finally:
        engine.dispose()


def test_poison_and_failing_events_are_dead_lettered_stored_and_redriven(
        stack: dict[str, Any]) -> None:
    settings, topic, record = stack["settings"], stack["topic"], stack["record"]
    poison, failing = f"{topic}-400", f"{topic}-500"
    producer = Producer(producer_config(settings))
    for event_id, status in ((poison, 400), (failing, 500)):
        event = CloudEvent({"id": event_id, "source": "/saga/test", "type": "shop.test.v1",
                            "partitionkey": f"order-{status}",
                            "datacontenttype": "application/json"}, {"status": status})
        out = to_kafka(event, topic)
        producer.produce(out.topic, out.value, out.key, headers=out.headers)
    assert producer.flush(10) == 0

    def both_stored() -> list[Any] | None:
        rows = _dead_letters(settings)
        return rows if len(rows) == 2 else None

    stored = wait_for(both_stored, timeout=30, message="both dead letters stored by dlq")
    # 400: Knative does not retry it. 500: the first attempt and exactly `retry` retries,
    # each after the linear backoff (0.1, 0.2, 0.3 s).
    assert len(_received(record, poison)) == 1
    attempts = _received(record, failing)
    assert len(attempts) == 4
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 0.9 * delay for gap, delay in zip(gaps, (0.1, 0.2, 0.3), strict=True))
    by_event = {row.event_id: row for row in stored}
    assert (by_event[poison].error_code, by_event[failing].error_code) == (400, 500)
    assert by_event[poison].error_data == "refused with 400"
    assert by_event[poison].attributes["knativeerrorcode"] == "400"

    code, listing, _ = run_saga("dlq", "list", "--json")
    assert code == 0
    assert {(d["type"], d["error_code"], d["failed_at"]) for d in json.loads(listing)} == {
        ("shop.test.v1", 400, "flaky"), ("shop.test.v1", 500, "flaky")}
    code, shown, _ = run_saga("dlq", "show", str(by_event[poison].id))
    assert code == 0
    detail = json.loads(shown)
    assert detail["error"] == {"code": 400, "destination": by_event[poison].error_dest,
                               "data": "refused with 400"}
    assert detail["data"] == {"status": 400} and "knativeerrorcode" not in detail["attributes"]
    code, _, refused = run_saga("dlq", "redrive", str(by_event[poison].id))
    assert code == 2 and "give it with --topic" in refused  # shop.test.v1: not catalogued

    stack["fixed"].touch()  # the cause is fixed
    code, said, _ = run_saga("dlq", "redrive", str(by_event[poison].id), "--topic", topic)
    assert code == 0 and f"re-drove dead letter {by_event[poison].id} to {topic}" in said
    def delivered_again() -> dict[str, Any] | None:
        got = _received(record, poison)
        return got[1] if len(got) == 2 else None

    again = wait_for(delivered_again, timeout=30, message="the re-driven event delivered")
    assert again["attributes"]["id"] == poison  # the same event: inboxes still dedupe it
    assert again["attributes"]["sagaredrive"] == f"{by_event[poison].id}.1"
    assert not any(name.startswith("knativeerror") for name in again["attributes"])
    redriven = {row.event_id: row for row in _dead_letters(settings)}
    assert redriven[poison].redrive_count == 1 and redriven[poison].redriven_at is not None
    code, waiting, _ = run_saga("dlq", "list", "--json")
    assert [d["event_id"] for d in json.loads(waiting)] == [failing]
    code, document, _ = run_saga("status", "--json")
    assert code == 0 and json.loads(document)["dead_letters"] == 1
