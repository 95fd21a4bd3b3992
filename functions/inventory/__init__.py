"""Inventory: reserves stock for new orders (all lines or none), commits it once the order
is paid and releases or returns it when the order is cancelled."""
