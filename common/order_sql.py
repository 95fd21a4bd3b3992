"""The SQL of the order state machine (common/order_state.py): an order read, locked,
created with its items and first history row, and moved along a path of statuses with a
history row per step. Plain statements with %(name)s parameters (common/pg.py runs them
prepared); tests/integration/test_statements.py holds each one to the migrated schema."""

# Each statement that reads an order returns the columns of order_state.Order, in its order.
READ_ORDER = """
SELECT id, customer_id, status, reason, payment_mode, total, shipping_address,
       payment_deadline, created_at, traceparent
  FROM orders.orders
 WHERE id = %(order_id)s
"""

LOCK_ORDER = """
SELECT id, customer_id, status, reason, payment_mode, total, shipping_address,
       payment_deadline, created_at, traceparent
  FROM orders.orders
 WHERE id = %(order_id)s
   FOR UPDATE
"""

# Compare-and-set: the UPDATE applies only when the order is in from_status (and locks the
# row); the history rows (one per step, in order) are written from what it returned, so a
# refused step writes nothing at all.
ADVANCE = """
WITH moved AS (
    UPDATE orders.orders
       SET status = %(to_status)s, reason = %(reason)s,
           payment_deadline = COALESCE(%(deadline)s::timestamptz, payment_deadline),
           updated_at = now(), version = version + 1
     WHERE id = %(order_id)s AND status = %(from_status)s
 RETURNING id, customer_id, status, reason, payment_mode, total, shipping_address,
           payment_deadline, created_at, traceparent
), history AS (
    INSERT INTO orders.order_status_history
           (order_id, from_status, to_status, reason, actor, event_id)
    SELECT moved.id, step.from_status, step.to_status, step.reason, %(actor)s, %(event_id)s
      FROM moved,
           unnest(%(froms)s::text[], %(tos)s::text[], %(reasons)s::text[]) WITH ORDINALITY
               AS step(from_status, to_status, reason, n)
     ORDER BY step.n
)
SELECT id, customer_id, status, reason, payment_mode, total, shipping_address,
       payment_deadline, created_at, traceparent
  FROM moved
"""

# The order, its items and its first history row in one statement (the foreign keys are
# checked at its end, when all three are in).
CREATE_ORDER = """
WITH created AS (
    INSERT INTO orders.orders (id, customer_id, status, payment_mode, total, shipping_address,
                               created_at, updated_at, traceparent)
    VALUES (%(order_id)s, %(customer_id)s, 'CREATED', %(payment_mode)s, %(total)s,
            %(shipping_address)s, %(at)s, %(at)s, %(traceparent)s)
    RETURNING id
), items AS (
    INSERT INTO orders.order_items (order_id, sku, quantity, unit_price)
    SELECT created.id, line.sku, line.quantity, line.unit_price
      FROM created,
           unnest(%(skus)s::text[], %(quantities)s::int[], %(prices)s::numeric[])
               AS line(sku, quantity, unit_price)
)
INSERT INTO orders.order_status_history (order_id, from_status, to_status, actor, at)
SELECT id, NULL, 'CREATED', %(actor)s, %(at)s::timestamptz FROM created
"""
