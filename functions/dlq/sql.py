"""The dead-letter function's SQL (schema messaging). Plain statements with %(name)s
parameters (common/pg.py runs them prepared); tests/integration/test_statements.py holds
each one to the migrated schema."""

# The letter and its inbox row in one statement: stored only when the inbox row is new, so
# a re-delivered letter is stored once. A row comes back when it was stored.
STORE_DEAD_LETTER = """
WITH first_time AS (
    INSERT INTO messaging.inbox (consumer, event_id, event_type)
    VALUES (%(consumer)s, %(key)s, %(event_type)s)
    ON CONFLICT DO NOTHING
    RETURNING event_id
)
INSERT INTO messaging.dead_letters
       (event_id, event_type, source, subject, attributes, data, error_dest, error_code,
        error_data)
SELECT %(event_id)s, %(event_type)s, %(source)s, %(subject)s, %(attributes)s::jsonb,
       %(data)s::bytea,
       %(error_dest)s, %(error_code)s::int, %(error_data)s
  FROM first_time
RETURNING id
"""
