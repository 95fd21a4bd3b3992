"""`saga check` on a real database: a saga run through the real functions passes; each
kind of damage (stock or money out of balance, a second capture, an order stuck, an event
never published, a dead letter, a compensation not applied, a customer not told) is found,
named, and makes the CLI exit 1.

The orders are driven in-process (tests.functions.saga_support) rather than through a
stack: fast, and the check does not care who wrote the rows. Every damage is undone, and
every check is scoped to this test's own customer, so the shared database stays clean.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from common.order_state import Status
from common.settings import Settings
from tests.functions.saga_support import (
    new_account,
    new_order,
    new_product,
    place_order,
    run_saga,
    sql,
)
from tests.helpers import engine_of
from tools.cli.main import main as saga
from tools.loadgen.check import CheckReport, Options, Scope, run_check

pytestmark = pytest.mark.integration


@pytest.fixture
def completed(saga_env: Settings) -> tuple[str, str, uuid.UUID]:
    """(customer, sku, order id) of one order that went the whole way to COMPLETED."""
    sku = new_product(saga_env, on_hand=10, price="5.00")
    customer = new_account(saga_env, "100.00")
    order, events = place_order(saga_env, customer, [(sku, 2, "5.00")])
    run_saga(saga_env, events)
    return customer, sku, order.id


def _check(settings: Settings, customer: str, **options: int) -> CheckReport:
    return run_check(engine_of(settings), Scope(customer_prefix=customer), Options(**options))


def _names(report: CheckReport) -> set[str]:
    return {v.invariant for v in report.violations}


@contextmanager
def _damage(settings: Settings, do: str, undo: str, **params: object) -> Iterator[None]:
    sql(settings, do, **params)
    try:
        yield
    finally:
        sql(settings, undo, **params)


def test_a_clean_run_passes(saga_env: Settings, completed: tuple[str, str, uuid.UUID]) -> None:
    customer, _, _ = completed
    report = _check(saga_env, customer)
    assert report.ok, report.summary()
    assert report.checked == {"orders": 1, "wallets": 1, "skus": 1}


@pytest.mark.parametrize(("damage", "do", "undo", "expected"), [
    ("stock", "UPDATE inventory.stock SET on_hand = on_hand + 1 WHERE sku = :sku",
     "UPDATE inventory.stock SET on_hand = on_hand - 1 WHERE sku = :sku",
     {"stock_conservation"}),
    ("second capture",
     "INSERT INTO payments.ledger (customer_id, order_id, kind, amount, balance_after, "
     "frozen_after) VALUES (:customer, :order, 'capture', 10.00, 90.00, 0)",
     "DELETE FROM payments.ledger WHERE order_id = :order AND kind = 'capture' "
     "AND id = (SELECT max(id) FROM payments.ledger WHERE order_id = :order)",
     {"money_conservation", "money_moved_once"}),
    ("refund without money back",
     "UPDATE payments.payments SET status = 'REFUNDED' WHERE order_id = :order",
     "UPDATE payments.payments SET status = 'CAPTURED' WHERE order_id = :order",
     {"money_moved_once", "outcome_applied"}),
    ("balance edited", "UPDATE payments.accounts SET balance = balance + 1 "
     "WHERE customer_id = :customer",
     "UPDATE payments.accounts SET balance = balance - 1 WHERE customer_id = :customer",
     {"money_conservation", "ledger_matches_wallet"}),
    ("shipment lost", "UPDATE shipping.shipments SET status = 'FAILED', tracking_number = "
     "NULL, reason = 'lost' WHERE order_id = :order",
     "UPDATE shipping.shipments SET status = 'DISPATCHED', tracking_number = 'TRK-RESTORED', "
     "reason = NULL WHERE order_id = :order",
     {"outcome_applied"}),
    ("customer not told", "UPDATE notifications.notifications SET kind = 'hidden' "
     "WHERE order_id = :order",
     "UPDATE notifications.notifications SET kind = 'order.completed' WHERE order_id = :order",
     {"customer_notified"}),
    ("event never published",
     "INSERT INTO messaging.outbox (id, topic, event_type, partition_key, attributes, data, "
     "producer, created_at) VALUES (gen_random_uuid(),"
     " 't', 't', CAST(:order AS text), '{}', '{}', 'test', now() - interval '1 hour')",
     "DELETE FROM messaging.outbox WHERE partition_key = CAST(:order AS text) "
     "AND producer = 'test'",
     {"outbox_published"}),
    ("dead letter", "INSERT INTO messaging.dead_letters (event_id, event_type, source, subject, "
     "attributes) VALUES ('dl-' || :customer, 't', 's', CAST(:order AS text), '{}')",
     "DELETE FROM messaging.dead_letters WHERE event_id = 'dl-' || :customer",
     {"dead_letters"}),
    ("history rewritten", "UPDATE orders.order_status_history SET to_status = 'PAID' "
     "WHERE order_id = :order AND to_status = 'COMPLETED'",
     "UPDATE orders.order_status_history SET to_status = 'COMPLETED' "
     "WHERE order_id = :order AND to_status = 'PAID' AND from_status = 'PAID'",
     {"history_consistent"}),
])
def test_damage_is_found_and_named(
    saga_env: Settings, completed: tuple[str, str, uuid.UUID], damage: str, do: str,
    undo: str, expected: set[str],
) -> None:
    customer, sku, order_id = completed
    with _damage(saga_env, do, undo, sku=sku, customer=customer, order=order_id):
        report = _check(saga_env, customer)
        assert _names(report) == expected, (damage, report.summary())
        named = json.dumps([v.rows for v in report.violations], default=str)
        assert str(order_id) in named or sku in named or customer in named
    assert _check(saga_env, customer).ok  # undone


def test_expected_dead_letters_are_allowed(saga_env: Settings,
                                           completed: tuple[str, str, uuid.UUID]) -> None:
    customer, _, order_id = completed
    with _damage(saga_env, "INSERT INTO messaging.dead_letters (event_id, event_type, source, "
                 "subject, attributes) VALUES ('dl-' || :customer, 't', 's', "
                 "CAST(:order AS text), '{}')",
                 "DELETE FROM messaging.dead_letters WHERE event_id = 'dl-' || :customer",
                 customer=customer, order=order_id):
        assert _check(saga_env, customer, expected_dead_letters=1).ok
        assert not _check(saga_env, customer, expected_dead_letters=0).ok


def test_an_order_stuck_midway_is_unsettled(saga_env: Settings) -> None:
    customer = new_account(saga_env, "50.00")
    stuck = new_order(saga_env, customer=customer, status=Status.PAID)
    try:
        report = _check(saga_env, customer)
        assert "orders_settled" in _names(report)
        [settled] = [v for v in report.violations if v.invariant == "orders_settled"]
        assert settled.rows[0]["order_id"] == str(stuck.id)
    finally:
        sql(saga_env, "DELETE FROM orders.orders WHERE id = :id", id=stuck.id)


def test_an_unpaid_order_within_its_window_is_settled_enough(saga_env: Settings) -> None:
    customer = new_account(saga_env, "50.00")
    waiting = new_order(saga_env, customer=customer, mode="confirm",
                        status=Status.AWAITING_PAYMENT)
    try:
        assert "orders_settled" not in _names(_check(saga_env, customer))
        sql(saga_env, "UPDATE orders.orders SET payment_deadline = now() - interval '1 hour' "
            "WHERE id = :id", id=waiting.id)
        assert "orders_settled" in _names(_check(saga_env, customer))
    finally:
        sql(saga_env, "DELETE FROM orders.orders WHERE id = :id", id=waiting.id)


def test_the_cli_exits_1_and_names_the_rows(
    saga_env: Settings, completed: tuple[str, str, uuid.UUID],
    capsys: pytest.CaptureFixture[str],
) -> None:
    customer, sku, _ = completed
    url = saga_env.database_url.get_secret_value() if saga_env.database_url else ""
    args = ["check", "--database-url", url, "--customer-prefix", customer]
    assert saga(args) == 0
    assert "saga check: OK" in capsys.readouterr().out
    with _damage(saga_env, "UPDATE inventory.stock SET reserved = reserved + 1 WHERE sku = :sku",
                 "UPDATE inventory.stock SET reserved = reserved - 1 WHERE sku = :sku",
                 sku=sku):
        assert saga([*args, "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    [violation] = report["violations"]
    assert violation["invariant"] == "stock_conservation"
    assert violation["rows"][0]["sku"] == sku


def test_check_reads_one_snapshot(saga_env: Settings) -> None:
    """Unscoped, the check covers the whole shared database and still runs (other tests'
    orders may legitimately be mid-flight there, so only its shape is asserted)."""
    report = run_check(engine_of(saga_env))
    assert report.checked["orders"] >= 0
    with engine_of(saga_env).connect() as conn:
        skus = int(conn.execute(text("SELECT count(*) FROM inventory.stock")).scalar_one())
    assert report.checked["skus"] == skus
