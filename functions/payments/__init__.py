"""Payments: freeze and capture an order's amount from the customer's wallet at most once
per order; refund or void it when the order is cancelled."""
