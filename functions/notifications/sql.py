"""The notifications function's SQL (schema notifications). A plain statement with
%(name)s parameters (common/pg.py runs it prepared); tests/integration/test_statements.py
holds it to the migrated schema."""

# The id is derived from the event's, so a second copy of one event's notification is
# refused even without the inbox.
INSERT_NOTIFICATION = """
INSERT INTO notifications.notifications (id, customer_id, order_id, kind, title, body)
VALUES (%(id)s, %(customer_id)s, %(order_id)s, %(kind)s, %(title)s, %(body)s)
ON CONFLICT DO NOTHING
"""
