"""The timeouts sweep's SQL (schema orders; the cancellations themselves go through the
state machine, common/order_sql.py). Plain statements with %(name)s parameters
(common/pg.py runs them prepared); tests/integration/test_statements.py holds each one to
the migrated schema."""

# Orders past their payment deadline, oldest first, locked; rows another transaction holds
# (the api taking a payment right now) are skipped, and re-checked by the next sweep.
LOCK_EXPIRED = """
SELECT id
  FROM orders.orders
 WHERE status = 'AWAITING_PAYMENT' AND payment_deadline < now()
 ORDER BY payment_deadline
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED
"""

# Orders that have not moved for stuck_after_s, oldest first.
STUCK = """
SELECT id, status, updated_at, extract(epoch FROM now() - updated_at)::bigint
  FROM orders.orders
 WHERE status NOT IN ('COMPLETED', 'CANCELLED')
   AND updated_at < now() - make_interval(secs => %(stuck_after_s)s)
 ORDER BY updated_at
 LIMIT %(limit)s
"""
