"""The shipping function's SQL (schema shipping), run by PgShipments (dispatch.py). Plain
statements with %(name)s parameters (common/pg.py runs them prepared);
tests/integration/test_statements.py holds each one to the migrated schema."""

# The order's one shipments row: the first writer decides "ship" or "never ship". A row
# comes back when this insert made it.
CLAIM_SHIPMENT = """
INSERT INTO shipping.shipments (order_id, status, tracking_number, address, reason)
VALUES (%(order_id)s, %(status)s, %(tracking_number)s, %(address)s, %(reason)s)
ON CONFLICT (order_id) DO NOTHING
RETURNING order_id
"""

LOCK_SHIPMENT = """
SELECT status, reason FROM shipping.shipments WHERE order_id = %(order_id)s FOR UPDATE
"""
