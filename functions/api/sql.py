"""The api's SQL: what its routes read and write, by resource (orders go through the state
machine's own statements, common/order_sql.py, and products are added as
common/products.py says). Plain statements with %(name)s parameters (common/pg.py runs them
prepared); tests/integration/test_statements.py holds each one to the migrated schema."""

# --- orders ------------------------------------------------------------------------------

# What OrderOut shows of an order row, in order_views' order.
ORDER = """
SELECT id, customer_id, status, reason, payment_mode, total, shipping_address,
       payment_deadline, created_at, updated_at
  FROM orders.orders
 WHERE id = %(order_id)s
"""

# A customer's orders, newest first, before the keyset (created_at, id) (the first page:
# before 'infinity'): the index ix_orders_customer_created serves every page alike.
MY_ORDERS = """
SELECT id, customer_id, status, reason, payment_mode, total, shipping_address,
       payment_deadline, created_at, updated_at
  FROM orders.orders
 WHERE customer_id = %(customer_id)s
   AND (%(status)s::text IS NULL OR status = %(status)s::text)
   AND (created_at, id) < (%(before_at)s::timestamptz, %(before_id)s::uuid)
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s
"""

ORDER_ITEMS = """
SELECT order_id, sku, quantity, unit_price
  FROM orders.order_items
 WHERE order_id = ANY(%(order_ids)s::uuid[])
 ORDER BY order_id, sku
"""

ORDER_TIMELINE = """
SELECT from_status, to_status, reason, at, actor
  FROM orders.order_status_history
 WHERE order_id = %(order_id)s
 ORDER BY id
"""

# The stamp of the order cache (docs/architecture.md, "The order cache").
ORDER_STAMP = "SELECT version, updated_at FROM orders.orders WHERE id = %(order_id)s"

# The cache's stamp and view come from one snapshot: the transaction's first statement.
REPEATABLE_READ = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"

PRICES = "SELECT sku, price FROM inventory.products WHERE sku = ANY(%(skus)s::text[])"

# An Idempotency-Key, claimed in the order's own transaction; no row back: used before.
CLAIM_IDEMPOTENCY_KEY = """
INSERT INTO orders.idempotency_keys (customer_id, key, request_hash, order_id)
VALUES (%(customer_id)s, %(key)s, %(request_hash)s, %(order_id)s)
ON CONFLICT DO NOTHING
RETURNING order_id
"""

PRIOR_ORDER = """
SELECT request_hash, order_id
  FROM orders.idempotency_keys
 WHERE customer_id = %(customer_id)s AND key = %(key)s
"""

NOW = "SELECT now()"

# --- accounts ----------------------------------------------------------------------------

CREATE_ACCOUNT = """
INSERT INTO payments.accounts (customer_id)
VALUES (%(customer_id)s)
ON CONFLICT DO NOTHING
RETURNING customer_id, balance, frozen
"""

LOCK_BALANCE = """
SELECT balance FROM payments.accounts WHERE customer_id = %(customer_id)s FOR UPDATE
"""

# The deposit and its ledger row, with the balances after it, in one statement.
DEPOSIT = """
WITH account AS (
    UPDATE payments.accounts
       SET balance = balance + %(amount)s, version = version + 1, updated_at = now()
     WHERE customer_id = %(customer_id)s
 RETURNING customer_id, balance, frozen
), entry AS (
    INSERT INTO payments.ledger (customer_id, kind, amount, balance_after, frozen_after)
    SELECT customer_id, 'deposit', %(amount)s::numeric, balance, frozen FROM account
)
SELECT customer_id, balance, frozen FROM account
"""

ACCOUNT = """
SELECT customer_id, balance, frozen FROM payments.accounts WHERE customer_id = %(customer_id)s
"""

LATEST_LEDGER = """
SELECT id, kind, amount, balance_after, frozen_after, order_id, created_at
  FROM payments.ledger
 WHERE customer_id = %(customer_id)s
 ORDER BY id DESC
 LIMIT %(limit)s
"""

# --- products ----------------------------------------------------------------------------

# The catalogue after a SKU ('' for the first page), with what can still be ordered.
PRODUCTS = """
SELECT product.sku, product.name, product.description, product.price,
       stock.on_hand - stock.reserved
  FROM inventory.products AS product
  JOIN inventory.stock AS stock ON stock.sku = product.sku
 WHERE product.sku > %(after_sku)s
 ORDER BY product.sku
 LIMIT %(limit)s
"""

PRODUCT = """
SELECT product.sku, product.name, product.description, product.price,
       stock.on_hand - stock.reserved
  FROM inventory.products AS product
  JOIN inventory.stock AS stock ON stock.sku = product.sku
 WHERE product.sku = %(sku)s
"""

# What a catalogue import compares with the file, of the SKUs it lists.
PRODUCTS_LISTED = """
SELECT sku, name, description, price FROM inventory.products WHERE sku = ANY(%(skus)s::text[])
"""

# The row lock orders a restock against reservations running in the inventory function.
LOCK_STOCK_ROW = "SELECT sku FROM inventory.stock WHERE sku = %(sku)s FOR UPDATE"

RESTOCK = """
WITH restocked AS (
    UPDATE inventory.stock
       SET on_hand = on_hand + %(quantity)s, version = version + 1
     WHERE sku = %(sku)s
)
INSERT INTO inventory.stock_movements (sku, kind, delta_on_hand, delta_reserved)
VALUES (%(sku)s, 'restock', %(quantity)s, 0)
"""

# --- notifications -----------------------------------------------------------------------

MY_NOTIFICATIONS = """
SELECT id, order_id, kind, title, body, created_at, read_at
  FROM notifications.notifications
 WHERE customer_id = %(customer_id)s
   AND (created_at, id) < (%(before_at)s::timestamptz, %(before_id)s::uuid)
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s
"""

# --- auth --------------------------------------------------------------------------------

# Attempts on one account take turns (the row lock), so each sees the failures before it.
LOCK_USER = """
SELECT password_hash, roles, failed_logins, locked_until, now()
  FROM auth.users
 WHERE username = %(username)s
   FOR UPDATE
"""

SET_SIGN_IN_STATE = """
UPDATE auth.users
   SET failed_logins = %(failed_logins)s, locked_until = %(locked_until)s::timestamptz,
       password_hash = COALESCE(%(password_hash)s, password_hash)
 WHERE username = %(username)s
"""

# No row back: the username is taken.
CREATE_USER = """
INSERT INTO auth.users (username, password_hash, roles)
VALUES (%(username)s, %(password_hash)s, %(roles)s::text[])
ON CONFLICT DO NOTHING
RETURNING username
"""

USERS_WITH_ROLE = """
SELECT username, password_hash
  FROM auth.users
 WHERE %(role)s::text = ANY(roles)
 ORDER BY username
"""

# Runs of the bootstrap Job take turns (the lock ends with their transaction).
BOOTSTRAP_LOCK = "SELECT pg_advisory_xact_lock(%(key)s::bigint)"
