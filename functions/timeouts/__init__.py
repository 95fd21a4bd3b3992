"""Timeouts: every minute (PingSource), cancel orders past their payment deadline and
report sagas stuck in a non-terminal state."""
