"""Publish every outbox row older than settings.outbox_relay_age_s, batch after batch,
until a batch comes back short (common.outbox.relay locks rows with SKIP LOCKED, so
several relays and the steps may run at once)."""

from __future__ import annotations

from common.outbox import relay
from common.resources import Resources

BATCH = 500
MAX_BATCHES = 100  # bounds one run (50,000 rows); the next ping carries on


def drain(resources: Resources) -> dict[str, int]:
    pool, publisher, settings = resources.pool, resources.publisher, resources.settings
    published = batches = 0
    while batches < MAX_BATCHES:
        count = relay(pool, publisher, older_than_s=settings.outbox_relay_age_s, limit=BATCH)
        published += count
        batches += 1
        # Short: nothing more is old enough, or the broker did not acknowledge (down), in
        # which case hammering it for the rest of the minute would not help.
        if count < BATCH:
            break
    return {"published": published, "batches": batches}
