"""The SQL of what every function does around its effects (schema messaging): the inbox row
that makes a delivery count once, the outbox rows written with the effects and marked once
the broker acknowledged them, the relay's pick of rows left unpublished, and what a
re-drive records on its dead letter (common/dead_letters.py). Plain
statements with %(name)s parameters (common/pg.py runs them prepared);
tests/integration/test_statements.py holds each one to the migrated schema."""

# "Seen before?" and "remember it" in one round trip: a row comes back on a first delivery.
CLAIM_INBOX = """
INSERT INTO messaging.inbox (consumer, event_id, event_type)
VALUES (%(consumer)s, %(event_id)s, %(event_type)s)
ON CONFLICT DO NOTHING
RETURNING event_id
"""

WRITE_OUTBOX = """
INSERT INTO messaging.outbox
       (id, topic, event_type, partition_key, attributes, data, producer, caused_by)
VALUES (%(id)s, %(type)s, %(type)s, %(partition_key)s, %(attributes)s, %(data)s,
        %(producer)s, %(caused_by)s)
"""

# What an earlier delivery of the event emitted and did not get published, in order.
UNPUBLISHED_CAUSED_BY = """
SELECT attributes, data
  FROM messaging.outbox
 WHERE producer = %(producer)s AND caused_by = %(caused_by)s AND published_at IS NULL
 ORDER BY created_at
"""

MARK_PUBLISHED = """
UPDATE messaging.outbox
   SET published_at = now()
 WHERE id = ANY(%(ids)s::uuid[]) AND published_at IS NULL
"""

# The marks are bookkeeping: a lost one only makes the relay publish the row again.
ASYNC_COMMIT = "SELECT set_config('synchronous_commit', 'off', true)"

# Rows left unpublished for longer than the relay's age, locked so that several relays (and
# the steps themselves) never pick the same row.
UNPUBLISHED_OLDER_THAN = """
SELECT id, attributes, data
  FROM messaging.outbox
 WHERE published_at IS NULL AND created_at < now() - make_interval(secs => %(age_s)s)
 ORDER BY created_at
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED
"""

# --- dead letters (common/dead_letters.py) ---------------------------------------------------

# The columns of dead_letters.Letter, in its order.
LETTER_COLUMNS = "id, event_type, subject, attributes, data, redriven_at, redrive_count, resolved"

MARK_REDRIVEN = """
UPDATE messaging.dead_letters
   SET redriven_at = now(), redrive_count = redrive_count + 1
 WHERE id = ANY(%(ids)s::bigint[])
"""

# The letters a re-drive of one letter failed into: their mark is "LETTER.N".
FAILED_AGAIN_AS = """
SELECT id
  FROM messaging.dead_letters
 WHERE attributes ->> 'sagaredrive' LIKE %(mark)s
 ORDER BY id
"""
