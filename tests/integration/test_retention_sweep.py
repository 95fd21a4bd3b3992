"""The retention sweep on a real PostgreSQL (functions/retention): each table loses exactly
what is past its rule and keeps what its rule protects; a dry run counts the same and deletes
nothing; on Tansu the inbox waits for the broker's start and keeps what was re-published
then; two sweeps at once count each row once; a SIGKILLed sweep leaves a consistent table
and the next one finishes the work; the status query reads the tables' sizes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, pool, text

from common.migrate import upgrade
from common.resources import Resources
from common.settings import Settings, to_sqlalchemy_url
from common.table_stats import table_stats
from functions.retention.sweep import sweep
from tests.helpers import wait_for
from tools import REPO_ROOT

pytestmark = pytest.mark.integration

DAY = 24 * 3600


@pytest.fixture
def database(fresh_database: Callable[[str], str]) -> Iterator[str]:
    """A database of its own: the sweep deletes from whole tables. The resources made on it
    (resources_on) are closed after the test."""
    url = fresh_database("retention")
    upgrade(url)
    yield url
    while _made:
        _made.pop().close()


@pytest.fixture
def db(database: str) -> Iterator[Engine]:
    engine = create_engine(to_sqlalchemy_url(database), poolclass=pool.NullPool)
    yield engine
    engine.dispose()


_made: list[Resources] = []


def resources_on(url: str, **changes: Any) -> Resources:
    """A retention process's resources on `url`, its broker Apache Kafka unless `changes`
    say otherwise (broker_enforces_retention=False: Tansu, as `./taskw up` tells it)."""
    settings = Settings(DATABASE_URL=url, broker_enforces_retention=True)
    _made.append(Resources(settings.model_copy(update=changes)))
    return _made[-1]


def sql(db: Engine, statement: str, **params: Any) -> list[Any]:
    with db.begin() as conn:
        result = conn.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def order(db: Engine, status: str, *, updated_days_ago: float = 0) -> str:
    order_id = str(uuid.uuid4())
    reason = "out_of_stock" if status == "CANCELLED" else None
    sql(db, "INSERT INTO orders.orders (id, customer_id, status, reason, payment_mode, total,"
            " updated_at) VALUES (:id, 'c', :status, :reason, 'auto', 1,"
            " now() - :days * interval '1 day')",
        id=order_id, status=status, reason=reason, days=updated_days_ago)
    return order_id


def inbox(db: Engine, consumer: str, days_ago: float, event_id: str | None = None) -> str:
    event_id = event_id or str(uuid.uuid4())
    sql(db, "INSERT INTO messaging.inbox (consumer, event_id, event_type, received_at)"
            " VALUES (:c, :e, 'shop.order.created.v1', now() - :days * interval '1 day')",
        c=consumer, e=event_id, days=days_ago)
    return event_id


def outbox(db: Engine, order_id: str, days_ago: float, *, published: bool = True) -> str:
    event_id = str(uuid.uuid4())
    sql(db, "INSERT INTO messaging.outbox (id, topic, event_type, partition_key, attributes,"
            " data, producer, created_at, published_at) VALUES (:id, 't', 't', :key, '{}',"
            " '{}', 'api', now() - :days * interval '1 day',"
            " CASE WHEN :published THEN now() - :days * interval '1 day' END)",
        id=event_id, key=order_id, days=days_ago, published=published)
    return event_id


def idempotency_key(db: Engine, order_id: str, days_ago: float) -> str:
    key = uuid.uuid4().hex
    sql(db, "INSERT INTO orders.idempotency_keys (customer_id, key, request_hash, order_id,"
            " created_at) VALUES ('c', :key, 'h', :order, now() - :days * interval '1 day')",
        key=key, order=order_id, days=days_ago)
    return key


def letter(db: Engine, days_ago: float, *, event_id: str | None = None, resolved: bool = False,
           redriven_days_ago: float | None = None, redrive_of: int | None = None) -> int:
    attributes = {"sagaredrive": f"{redrive_of}.1"} if redrive_of else {}
    [(letter_id,)] = sql(
        db, "INSERT INTO messaging.dead_letters (event_id, event_type, source, attributes,"
            " created_at, resolved, redriven_at) VALUES (:e, 't', 's', CAST(:a AS jsonb),"
            " now() - :days * interval '1 day', :resolved,"
            " now() - CAST(:redriven AS float) * interval '1 day') RETURNING id",
        e=event_id or str(uuid.uuid4()), a=json.dumps(attributes), days=days_ago,
        resolved=resolved, redriven=redriven_days_ago)
    return int(letter_id)


def ids(db: Engine, statement: str) -> set[Any]:
    return {row[0] for row in sql(db, statement)}


def test_each_table_loses_exactly_what_is_past_its_rule(database: str, db: Engine) -> None:
    done, open_ = order(db, "COMPLETED"), order(db, "AWAITING_PAYMENT")
    # inbox: 9 days for the event topics' consumers, 16 for the dlq function's
    gone_inbox = {inbox(db, "inventory", 10), inbox(db, "dlq", 17)}
    kept_inbox = {inbox(db, "inventory", 8), inbox(db, "dlq", 10)}
    redrivable = inbox(db, "payments", 40)  # a dead letter of this event is stored
    letter(db, 40, event_id=redrivable)
    # outbox: published rows of finished orders, 3 days
    gone_outbox = {outbox(db, done, 4)}
    kept_outbox = {outbox(db, done, 2), outbox(db, done, 30, published=False),
                   outbox(db, open_, 30)}
    # idempotency keys: 1 day
    gone_keys, kept_keys = {idempotency_key(db, done, 2)}, {idempotency_key(db, done, 0.5)}
    # dead letters: dealt with (resolved, re-driven) 30 days after their last re-drive
    waiting = letter(db, 60)
    gone_letters = {letter(db, 40, resolved=True), letter(db, 50, redriven_days_ago=40)}
    kept_letters = {waiting, letter(db, 40, resolved=True, redriven_days_ago=10),
                    letter(db, 10, resolved=True)}
    failed_again = letter(db, 50, redriven_days_ago=40)
    kept_letters |= {failed_again, letter(db, 39, redrive_of=failed_again)}
    letters_before = ids(db, "SELECT id FROM messaging.dead_letters")

    counts = sweep(resources_on(database))

    assert counts == {"inbox": 2, "outbox": 1, "idempotency_keys": 1, "dead_letters": 2,
                      "batches": 5, "more": 0, "dry_run": 0, "inbox_swept": 1}
    left = ids(db, "SELECT event_id FROM messaging.inbox")
    assert left == kept_inbox | {redrivable}
    assert not gone_inbox & left
    assert ids(db, "SELECT CAST(id AS text) FROM messaging.outbox") == kept_outbox
    assert ids(db, "SELECT key FROM orders.idempotency_keys") == kept_keys
    assert ids(db, "SELECT id FROM messaging.dead_letters") == letters_before - gone_letters
    assert kept_letters <= letters_before - gone_letters
    assert not gone_outbox & ids(db, "SELECT CAST(id AS text) FROM messaging.outbox")
    assert not gone_keys & ids(db, "SELECT key FROM orders.idempotency_keys")

    again = sweep(resources_on(database))  # nothing left past retention
    assert {again[t] for t in ("inbox", "outbox", "idempotency_keys", "dead_letters")} == {0}


def test_a_dry_run_counts_what_a_sweep_deletes_and_deletes_nothing(
    database: str, db: Engine
) -> None:
    done = order(db, "CANCELLED")
    for days in (10, 11, 1):
        inbox(db, "shipping", days)
        outbox(db, done, days)
    snapshot = ids(db, "SELECT event_id FROM messaging.inbox"), ids(
        db, "SELECT id FROM messaging.outbox")

    dry = sweep(resources_on(database, retention_dry_run=True))
    assert (dry["inbox"], dry["outbox"], dry["dry_run"], dry["batches"]) == (2, 2, 1, 0)
    assert (ids(db, "SELECT event_id FROM messaging.inbox"),
            ids(db, "SELECT id FROM messaging.outbox")) == snapshot
    real = sweep(resources_on(database), dry_run=False)
    assert (real["inbox"], real["outbox"]) == (2, 2)


def test_on_tansu_the_inbox_waits_for_the_brokers_start_and_keeps_what_it_republished(
    database: str, db: Engine
) -> None:
    """Tansu keeps every record while it runs, and `up` re-published the outbox of the
    orders unfinished at its start: only older inbox rows go, and not those events'."""
    started = datetime.now(UTC) - timedelta(days=12)
    before_start = inbox(db, "inventory", 20)
    since_start = inbox(db, "inventory", 10)  # past the window, but the broker still has it
    # An order unfinished when the broker started (finished since): its events were
    # re-published then, and its consumers must still find their inbox rows.
    republished_order = order(db, "COMPLETED", updated_days_ago=5)
    republished = outbox(db, republished_order, 20)
    inbox(db, "inventory", 20, event_id=republished)
    finished_before = order(db, "COMPLETED", updated_days_ago=19)
    not_republished = outbox(db, finished_before, 20)
    inbox(db, "inventory", 20, event_id=not_republished)

    unknown = sweep(resources_on(database, broker_enforces_retention=False))
    assert (unknown["inbox_swept"], unknown["inbox"]) == (0, 0)  # no start: no inbox sweep
    assert len(ids(db, "SELECT event_id FROM messaging.inbox")) == 4
    # Without a known start the outbox goes by its own rule (the inbox is not swept then).
    assert unknown["outbox"] == 2
    sql(db, "DELETE FROM messaging.inbox")
    before_start = inbox(db, "inventory", 20)
    since_start = inbox(db, "inventory", 10)
    republished = outbox(db, republished_order, 20)
    inbox(db, "inventory", 20, event_id=republished)
    not_republished = outbox(db, finished_before, 20)
    inbox(db, "inventory", 20, event_id=not_republished)

    counts = sweep(resources_on(database, broker_enforces_retention=False,
                                  broker_started_at=started))
    assert counts["inbox_swept"] == 1
    assert ids(db, "SELECT event_id FROM messaging.inbox") == {since_start, republished}
    assert before_start not in ids(db, "SELECT event_id FROM messaging.inbox")
    # The re-published event's outbox row stays while this broker runs: the inbox rule
    # looks it up.
    assert ids(db, "SELECT CAST(id AS text) FROM messaging.outbox") == {republished}


def test_two_sweeps_at_once_split_the_work_and_count_each_row_once(
    database: str, db: Engine
) -> None:
    sql(db, "INSERT INTO messaging.inbox (consumer, event_id, event_type, received_at)"
            " SELECT 'notifications', gen_random_uuid()::text, 't',"
            " now() - interval '20 days' + g * interval '1 second'"
            " FROM generate_series(1, 6000) g")
    kept = inbox(db, "notifications", 1)
    results: list[dict[str, int]] = []
    go = threading.Barrier(2)

    def one() -> None:  # two pods' sweeps: each its own resources
        resources = resources_on(database)
        go.wait()
        results.append(sweep(resources, batch=100))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sum(r["inbox"] for r in results) == 6000
    assert ids(db, "SELECT event_id FROM messaging.inbox") == {kept}


def test_a_run_stops_at_its_budget_and_says_there_is_more(database: str, db: Engine) -> None:
    inbox(db, "inventory", 30)
    stopped = sweep(resources_on(database), budget_s=0)
    assert (stopped["inbox"], stopped["batches"], stopped["more"]) == (0, 0, 1)
    assert sweep(resources_on(database))["inbox"] == 1


_KILLABLE = """
import sys
from common.resources import Resources
from common.settings import Settings
from functions.retention.sweep import sweep
sweep(Resources(Settings(DATABASE_URL=sys.argv[1], broker_enforces_retention=True)), batch=50)
"""


def test_a_sweep_killed_at_any_point_leaves_a_consistent_table(
    database: str, db: Engine
) -> None:
    total = 200_000
    sql(db, "INSERT INTO messaging.inbox (consumer, event_id, event_type, received_at)"
            " SELECT 'inventory', gen_random_uuid()::text, 't',"
            " now() - interval '30 days' + g * interval '1 millisecond'"
            " FROM generate_series(1, :n) g", n=total)
    kept = {inbox(db, "inventory", 1) for _ in range(3)}

    def left() -> int:
        return int(sql(db, "SELECT count(*) FROM messaging.inbox")[0][0])

    process = subprocess.Popen([sys.executable, "-c", _KILLABLE, database], cwd=REPO_ROOT,
                               env=os.environ | {"PYTHONPATH": str(REPO_ROOT)})
    try:
        wait_for(lambda: left() < total - 1000, timeout=60, message="the sweep to delete")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    killed_at = left()
    assert killed_at > len(kept), "the sweep finished before it was killed: kill it earlier"
    # The batch in flight rolled back, no lock outlived the process: the next sweep deletes
    # exactly the rest, and nothing within retention went.
    assert sweep(resources_on(database))["inbox"] == killed_at - len(kept)
    assert ids(db, "SELECT event_id FROM messaging.inbox") == kept


def test_the_status_query_reads_rows_size_and_oldest_row(database: str, db: Engine) -> None:
    done = order(db, "COMPLETED")
    inbox(db, "inventory", 3)
    inbox(db, "inventory", 1)
    outbox(db, done, 5, published=False)
    outbox(db, done, 2)
    with db.connect() as conn:
        stats = {s.table: s for s in table_stats(conn)}
    assert set(stats) == {"messaging.inbox", "messaging.outbox", "messaging.dead_letters",
                          "orders.idempotency_keys"}
    assert (stats["messaging.inbox"].rows, stats["messaging.inbox"].rows_estimated) == (2, False)
    assert stats["messaging.outbox"].rows == 2
    letters = stats["messaging.dead_letters"]
    assert (letters.rows, letters.oldest) == (0, None)
    assert all(s.bytes > 0 for s in stats.values())
    now = datetime.now(UTC)
    inbox_oldest, outbox_oldest = stats["messaging.inbox"].oldest, stats["messaging.outbox"].oldest
    assert inbox_oldest is not None and outbox_oldest is not None
    assert timedelta(days=2.9) < now - inbox_oldest < timedelta(days=3.1)
    # The unpublished row is the outbox's oldest.
    assert timedelta(days=4.9) < now - outbox_oldest < timedelta(days=5.1)
