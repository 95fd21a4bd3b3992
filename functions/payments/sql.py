"""The payments' SQL (schema payments), run by PgWallet (wallet.py). Lock order in both
handlers: the account row first, then the order's payments row. The money arithmetic and
every refusal stay in Python (wallet.moved, charge.py): these statements only read, lock
and write what was decided. Plain statements with %(name)s parameters (common/pg.py runs
them prepared); tests/integration/test_statements.py holds each one to the migrated
schema."""

LOCK_ACCOUNT = """
SELECT customer_id, balance, frozen
  FROM payments.accounts
 WHERE customer_id = %(customer_id)s
   FOR UPDATE
"""

LOCK_PAYMENT = """
SELECT customer_id, amount, status
  FROM payments.payments
 WHERE order_id = %(order_id)s
   FOR UPDATE
"""

# The order's one payments row (its primary key is what makes payment at most once per
# order). A row comes back when this insert made it.
CLAIM_PAYMENT = """
INSERT INTO payments.payments (order_id, customer_id, amount, status, reason)
VALUES (%(order_id)s, %(customer_id)s, %(amount)s, %(status)s, %(reason)s)
ON CONFLICT DO NOTHING
RETURNING order_id
"""

SET_PAYMENT_STATUS = """
UPDATE payments.payments
   SET status = %(status)s, updated_at = now()
 WHERE order_id = %(order_id)s
"""

# The locked account's new balances and the ledger rows that led there, in one statement.
POST = """
WITH account AS (
    UPDATE payments.accounts
       SET balance = %(balance)s, frozen = %(frozen)s, version = version + 1,
           updated_at = now()
     WHERE customer_id = %(customer_id)s
)
INSERT INTO payments.ledger
       (customer_id, order_id, kind, amount, balance_after, frozen_after)
SELECT %(customer_id)s, %(order_id)s::uuid, entry.kind, entry.amount, entry.balance_after,
       entry.frozen_after
  FROM unnest(%(kinds)s::text[], %(amounts)s::numeric[], %(balances_after)s::numeric[],
              %(frozen_after)s::numeric[]) WITH ORDINALITY
           AS entry(kind, amount, balance_after, frozen_after, n)
 ORDER BY entry.n
"""
