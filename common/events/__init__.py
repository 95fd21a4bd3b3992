"""The event catalogue: every CloudEvent type, its topic, data model, producers and consumers."""

from common.events.catalogue import CATALOGUE, DEAD_LETTER_TOPIC, EventSpec, spec_for, topics

__all__ = ["CATALOGUE", "DEAD_LETTER_TOPIC", "EventSpec", "spec_for", "topics"]
