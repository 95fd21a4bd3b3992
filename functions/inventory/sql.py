"""The inventory's SQL (schema inventory), run by PgStock (stock.py). Lock order in every
statement and step: the order's reservations row first, then its stock rows in SKU order.
Plain statements with %(name)s parameters (common/pg.py runs them prepared);
tests/integration/test_statements.py holds each one to the migrated schema."""

# The order's one reservations row: whoever inserts it first decides (reserve, or a
# cancellation's RELEASED tombstone). A row comes back when this insert made it.
CLAIM_RESERVATION = """
INSERT INTO inventory.reservations (order_id, status)
VALUES (%(order_id)s, %(status)s)
ON CONFLICT DO NOTHING
RETURNING order_id
"""

LOCK_RESERVATION = """
SELECT status FROM inventory.reservations WHERE order_id = %(order_id)s FOR UPDATE
"""

SET_RESERVATION = """
UPDATE inventory.reservations
   SET status = %(status)s, updated_at = now()
 WHERE order_id = %(order_id)s
"""

# Only from the status it is expected in: a compare-and-set that also takes the
# reservation's row lock (the first lock of every inventory step).
MOVE_RESERVATION = """
UPDATE inventory.reservations
   SET status = %(status)s, updated_at = now()
 WHERE order_id = %(order_id)s AND status = %(expected)s
RETURNING order_id
"""

# What each SKU has free, its stock rows locked in SKU order.
LOCK_STOCK = """
SELECT sku, on_hand - reserved
  FROM inventory.stock
 WHERE sku = ANY(%(skus)s::text[])
 ORDER BY sku
   FOR UPDATE
"""

RECORD_ITEMS = """
INSERT INTO inventory.reservation_items (order_id, sku, quantity)
SELECT %(order_id)s::uuid, sku, quantity
  FROM unnest(%(skus)s::text[], %(quantities)s::int[]) AS item(sku, quantity)
"""

# The order's items with their stock rows locked, in SKU order.
LOCK_ITEMS = """
SELECT item.sku, item.quantity
  FROM inventory.reservation_items AS item
  JOIN inventory.stock AS stock ON stock.sku = item.sku
 WHERE item.order_id = %(order_id)s
 ORDER BY stock.sku
   FOR UPDATE OF stock
"""

# Every SKU's change and its movement row in one statement: on_hand += on_hand_deltas[i],
# reserved += reserved_deltas[i] for skus[i], so that sum(delta_on_hand) = on_hand and
# sum(delta_reserved) = reserved hold per SKU.
MOVE_STOCK = """
WITH change AS (
    SELECT *
      FROM unnest(%(skus)s::text[], %(on_hand_deltas)s::int[], %(reserved_deltas)s::int[])
           AS change(sku, on_hand, reserved)
), moved AS (
    UPDATE inventory.stock AS stock
       SET on_hand = stock.on_hand + change.on_hand,
           reserved = stock.reserved + change.reserved,
           version = stock.version + 1
      FROM change
     WHERE stock.sku = change.sku
)
INSERT INTO inventory.stock_movements (sku, kind, delta_on_hand, delta_reserved, order_id)
SELECT sku, %(kind)s, on_hand, reserved, %(order_id)s::uuid FROM change
"""
