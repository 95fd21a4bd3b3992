"""Retention: every ten minutes (PingSource), delete the inbox, outbox, idempotency-key and
dead-letter rows that are past their retention, so those tables stop growing with traffic."""
