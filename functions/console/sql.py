"""The SQL of the console's operations (schemas console and messaging, orders through
common/order_state.py): the audit row every operation writes, and the dead letters and
orders an operation locks before it changes them. Plain statements with %(name)s
parameters, run in the unit of work (common/pg.py prepares them);
tests/integration/test_statements.py holds each one to the migrated schema. The pages read
with SQLAlchemy (queries.py and the views)."""

from common.dead_letters import waiting_sql
from common.messaging_sql import LETTER_COLUMNS

INSERT_AUDIT = """
INSERT INTO console.audit
       (actor, action, outcome, why, filter, count, detail, order_ids, letter_ids, trace_id)
VALUES (%(actor)s, %(action)s, %(outcome)s, %(why)s, %(filter)s::jsonb, %(count)s::int,
        %(detail)s::jsonb, %(order_ids)s::uuid[], %(letter_ids)s::bigint[], %(trace_id)s)
RETURNING id
"""

READ_LETTER = f"""
SELECT {LETTER_COLUMNS}
  FROM messaging.dead_letters
 WHERE id = %(id)s
"""  # noqa: S608 (constants only)

LOCK_LETTER = f"{READ_LETTER} FOR UPDATE"

# One order's waiting letters, by the expression ix_dead_letters_order indexes.
LOCK_WAITING_LETTERS_OF_ORDER = f"""
SELECT {LETTER_COLUMNS}
  FROM messaging.dead_letters d
 WHERE {waiting_sql("d")} AND d.attributes ->> 'partitionkey' = %(order_id)s
 ORDER BY d.id
   FOR UPDATE
"""  # noqa: S608 (constants only)

LOCK_WAITING_LETTERS_OF_TYPE = f"""
SELECT {LETTER_COLUMNS}
  FROM messaging.dead_letters d
 WHERE {waiting_sql("d")} AND d.event_type = %(type)s
 ORDER BY d.id
 LIMIT %(limit)s
   FOR UPDATE
"""  # noqa: S608 (constants only)

RESOLVE_LETTER = """
UPDATE messaging.dead_letters
   SET resolved = true
 WHERE id = %(id)s
"""

# The orders a bulk cancel found still in one of `statuses`, locked in id order (two bulk
# runs never deadlock); a row that left them while we waited for its lock is left out by
# PostgreSQL's re-check.
LOCK_ORDERS_IN = """
SELECT id
  FROM orders.orders
 WHERE id = ANY(%(ids)s::uuid[]) AND status = ANY(%(statuses)s::text[])
 ORDER BY id
   FOR UPDATE
"""
