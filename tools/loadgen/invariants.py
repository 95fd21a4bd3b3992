"""The saga's invariants as SQL: one query per rule, returning the rows that break it. Each
starts from the same scope (the CTEs `so` orders, `sc` wallets, `ss` SKUs), so one run's
customers can be checked on a shared database; unscoped, they cover everything.
*Conservation* rules (money, stock, at most one capture) hold in every committed snapshot:
each step changes a wallet or stock row with its ledger or movement rows in one
transaction. *Convergence* rules (orders terminal, compensations applied, outbox
published, notifications written) hold once the system is quiet (check.settle waits)."""

from __future__ import annotations

from dataclasses import dataclass

from common.dead_letters import waiting_sql
from common.order_state import TRANSITIONS

# Scope parameters: :customer_like, :sku_like (LIKE patterns or NULL), :since (or NULL).
SCOPE = """
WITH so AS (
    SELECT o.* FROM orders.orders o
    WHERE (CAST(:customer_like AS text) IS NULL OR o.customer_id LIKE :customer_like)
      AND (CAST(:since AS timestamptz) IS NULL OR o.created_at >= :since)
), sc AS (
    SELECT a.* FROM payments.accounts a
    WHERE CAST(:customer_like AS text) IS NULL OR a.customer_id LIKE :customer_like
), ss AS (
    SELECT s.* FROM inventory.stock s
    WHERE CASE
        WHEN CAST(:sku_like AS text) IS NOT NULL THEN s.sku LIKE :sku_like
        WHEN CAST(:customer_like AS text) IS NULL AND CAST(:since AS timestamptz) IS NULL
            THEN true
        ELSE s.sku IN (SELECT i.sku FROM orders.order_items i JOIN so ON so.id = i.order_id)
    END
)
"""


@dataclass(frozen=True)
class Invariant:
    name: str
    rule: str  # one sentence a reader of the report understands
    sql: str  # after SCOPE; returns the violating rows
    converges: bool = False  # holds only once the system is quiet


_LEDGER_SUMS = """
    SELECT customer_id,
        COALESCE(SUM(amount) FILTER (WHERE kind = 'deposit'), 0) AS deposits,
        COALESCE(SUM(amount) FILTER (WHERE kind = 'freeze'), 0) AS freezes,
        COALESCE(SUM(amount) FILTER (WHERE kind = 'unfreeze'), 0) AS unfreezes,
        COALESCE(SUM(amount) FILTER (WHERE kind = 'capture'), 0) AS captures,
        COALESCE(SUM(amount) FILTER (WHERE kind = 'refund'), 0) AS refunds
    FROM payments.ledger WHERE customer_id IN (SELECT customer_id FROM sc)
    GROUP BY customer_id
"""

_LEGAL = ", ".join(
    [f"('{a.value}', '{b.value}')" for a, targets in TRANSITIONS.items() for b in targets]
)

INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "money_conservation",
        "per wallet: deposits - captures + refunds = balance + frozen, "
        "freezes - unfreezes - captures = frozen, neither negative",
        # Built from this module's constants only (no outside input): not an injection.
        f"""SELECT a.customer_id, a.balance, a.frozen, l.deposits, l.freezes, l.unfreezes,
                   l.captures, l.refunds
            FROM sc a LEFT JOIN ({_LEDGER_SUMS}) l USING (customer_id)
            WHERE a.balance < 0 OR a.frozen < 0
               OR COALESCE(l.deposits - l.captures + l.refunds, 0) <> a.balance + a.frozen
               OR COALESCE(l.freezes - l.unfreezes - l.captures, 0) <> a.frozen""",  # noqa: S608
    ),
    Invariant(
        "ledger_matches_wallet",
        "per wallet: the last ledger row's balances are the wallet's",
        """SELECT a.customer_id, a.balance, a.frozen, last.balance_after, last.frozen_after
            FROM sc a JOIN LATERAL (
                SELECT balance_after, frozen_after FROM payments.ledger
                WHERE customer_id = a.customer_id ORDER BY id DESC LIMIT 1) last ON true
            WHERE (last.balance_after, last.frozen_after) IS DISTINCT FROM (a.balance, a.frozen)""",
    ),
    Invariant(
        "frozen_matches_payments",
        "per wallet: frozen money = the amounts of its payments in FROZEN",
        """SELECT a.customer_id, a.frozen, COALESCE(p.held, 0) AS held_by_payments
            FROM sc a LEFT JOIN (
                SELECT customer_id, SUM(amount) AS held FROM payments.payments
                WHERE status = 'FROZEN' GROUP BY customer_id) p USING (customer_id)
            WHERE a.frozen <> COALESCE(p.held, 0)""",
    ),
    Invariant(
        "stock_conservation",
        "per SKU: movements add up to on_hand and reserved, 0 <= reserved <= on_hand, and "
        "reserved = the units of RESERVED reservations",
        """SELECT s.sku, s.on_hand, s.reserved, COALESCE(m.on_hand_moves, 0) AS on_hand_moves,
                   COALESCE(m.reserved_moves, 0) AS reserved_moves,
                   COALESCE(r.open_units, 0) AS open_reservations
            FROM ss s
            LEFT JOIN (SELECT sku, SUM(delta_on_hand) AS on_hand_moves,
                              SUM(delta_reserved) AS reserved_moves
                       FROM inventory.stock_movements WHERE sku IN (SELECT sku FROM ss)
                       GROUP BY sku) m USING (sku)
            LEFT JOIN (SELECT ri.sku, SUM(ri.quantity) AS open_units
                       FROM inventory.reservation_items ri
                       JOIN inventory.reservations rv
                         ON rv.order_id = ri.order_id AND rv.status = 'RESERVED'
                       WHERE ri.sku IN (SELECT sku FROM ss) GROUP BY ri.sku) r USING (sku)
            WHERE s.reserved < 0 OR s.reserved > s.on_hand
               OR COALESCE(m.on_hand_moves, 0) <> s.on_hand
               OR COALESCE(m.reserved_moves, 0) <> s.reserved
               OR COALESCE(r.open_units, 0) <> s.reserved""",
    ),
    Invariant(
        "stock_moved_once",
        "per order and SKU: at most one reserve, release, commit and return movement",
        """SELECT m.order_id, m.sku, m.kind, COUNT(*) AS times
            FROM inventory.stock_movements m JOIN so ON so.id = m.order_id
            GROUP BY m.order_id, m.sku, m.kind HAVING COUNT(*) > 1""",
    ),
    Invariant(
        "money_moved_once",
        "per order: at most one freeze, capture, unfreeze and refund; the payment's status "
        "agrees with its ledger rows",
        """SELECT p.order_id, p.status, p.amount, l.freezes, l.captures, l.unfreezes, l.refunds
            FROM so JOIN payments.payments p ON p.order_id = so.id
            LEFT JOIN LATERAL (
                SELECT COUNT(*) FILTER (WHERE kind = 'freeze') AS freezes,
                       COUNT(*) FILTER (WHERE kind = 'capture') AS captures,
                       COUNT(*) FILTER (WHERE kind = 'unfreeze') AS unfreezes,
                       COUNT(*) FILTER (WHERE kind = 'refund') AS refunds
                FROM payments.ledger WHERE order_id = p.order_id) l ON true
            WHERE l.freezes > 1 OR l.captures > 1 OR l.unfreezes > 1 OR l.refunds > 1
               OR (p.status = 'CAPTURED' AND p.amount > 0 AND (l.captures, l.refunds) <> (1, 0))
               OR (p.status = 'REFUNDED' AND p.amount > 0 AND (l.captures, l.refunds) <> (1, 1))
               OR (p.status IN ('FAILED', 'VOIDED') AND l.captures <> 0)""",
    ),
    Invariant(
        "orders_settled",
        "every order is COMPLETED or CANCELLED, or AWAITING_PAYMENT within its payment "
        "window (plus the timeouts sweep's grace)",
        """SELECT id AS order_id, customer_id, status, payment_mode, created_at,
                  updated_at, payment_deadline
            FROM so
            WHERE status NOT IN ('COMPLETED', 'CANCELLED')
              AND NOT (status = 'AWAITING_PAYMENT' AND payment_deadline IS NOT NULL
                       AND payment_deadline + make_interval(secs => :window_grace_s) > now())""",
        converges=True,
    ),
    Invariant(
        "outcome_applied",
        "a COMPLETED order has its payment CAPTURED for its total, its stock COMMITTED and "
        "its shipment DISPATCHED; a CANCELLED one holds no stock or money and never ships",
        """SELECT so.id AS order_id, so.status, so.reason, so.total, p.status AS payment,
                  p.amount AS paid, rv.status AS reservation, sh.status AS shipment
            FROM so
            LEFT JOIN payments.payments p ON p.order_id = so.id
            LEFT JOIN inventory.reservations rv ON rv.order_id = so.id
            LEFT JOIN shipping.shipments sh ON sh.order_id = so.id
            WHERE (so.status = 'COMPLETED' AND (
                       p.status IS DISTINCT FROM 'CAPTURED' OR p.amount <> so.total
                       OR rv.status IS DISTINCT FROM 'COMMITTED'
                       OR sh.status IS DISTINCT FROM 'DISPATCHED'))
               OR (so.status = 'CANCELLED' AND (
                       p.status IS NULL OR p.status IN ('FROZEN', 'CAPTURED')
                       OR rv.status IS NULL OR rv.status IN ('RESERVED', 'COMMITTED')
                       OR sh.status IS DISTINCT FROM 'FAILED'))
               OR (so.status NOT IN ('COMPLETED', 'CANCELLED')
                   AND sh.status = 'DISPATCHED')""",
        converges=True,
    ),
    Invariant(
        "history_consistent",
        "each order's history is a chain of legal transitions ending in its status",
        # Built from this module's constants only (no outside input): not an injection.
        f"""SELECT so.id AS order_id, so.status, h.from_status, h.to_status, h.last_to
            FROM so JOIN LATERAL (
                SELECT x.from_status, x.to_status,
                       LAST_VALUE(x.to_status) OVER (ORDER BY x.id ROWS BETWEEN
                           UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last_to
                FROM orders.order_status_history x WHERE x.order_id = so.id) h ON true
            WHERE h.last_to <> so.status
               OR (h.from_status IS NULL AND h.to_status <> 'CREATED')
               OR (h.from_status IS NOT NULL
                   AND (h.from_status, h.to_status) NOT IN (VALUES {_LEGAL}))""",  # noqa: S608
    ),
    Invariant(
        "customer_notified",
        "every terminal order has its customer's notification",
        """SELECT so.id AS order_id, so.status FROM so
            WHERE so.status IN ('COMPLETED', 'CANCELLED') AND NOT EXISTS (
                SELECT 1 FROM notifications.notifications n
                WHERE n.order_id = so.id
                  AND n.kind = CASE so.status WHEN 'COMPLETED' THEN 'order.completed'
                                              ELSE 'order.cancelled' END)""",
        converges=True,
    ),
    Invariant(
        "outbox_published",
        "every outbox row is published (older than the grace period)",
        """SELECT ob.id AS event_id, ob.event_type, ob.partition_key, ob.producer, ob.created_at
            FROM messaging.outbox ob
            WHERE ob.published_at IS NULL
              AND ob.created_at < now() - make_interval(secs => :outbox_grace_s)
              AND ((CAST(:customer_like AS text) IS NULL AND CAST(:since AS timestamptz) IS NULL)
                   OR ob.partition_key IN (SELECT CAST(id AS text) FROM so))""",
        converges=True,
    ),
    Invariant(
        "dead_letters",
        "no dead letters waiting (neither re-driven nor resolved: what `saga dlq list` "
        "shows) beyond the number the run expected",
        # waiting_sql is the dlq's own definition, the one `saga dlq list` and `saga status`
        # count by (no outside input): not an injection.
        f"""SELECT d.id, d.event_id, d.event_type, d.subject, d.error_dest, d.error_code,
                  d.created_at, COUNT(*) OVER () AS total
            FROM messaging.dead_letters d
            WHERE {waiting_sql("d")}
              AND ((CAST(:customer_like AS text) IS NULL AND CAST(:since AS timestamptz) IS NULL)
                   OR d.subject IN (SELECT CAST(id AS text) FROM so))""",  # noqa: S608
        converges=True,
    ),
)
