"""Notifications: the customer's inbox, shown in the cabinet."""
