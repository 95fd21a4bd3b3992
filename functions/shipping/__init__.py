"""Shipping: one shipment per paid order, with a tracking number, or a failed one.

Test flag: a shipping address containing the word UNDELIVERABLE (any case, as a whole
word, e.g. "1 Nowhere Lane, UNDELIVERABLE") makes the shipment fail with reason
"undeliverable_address", so the shipping_failed compensation path (refund, stock returned)
can be exercised end to end without a real carrier.
"""
