"""The event catalogue is consistent with itself and with the functions' handlers."""

from __future__ import annotations

import re

from pydantic import BaseModel

from common.events.catalogue import CATALOGUE, DEAD_LETTER_TOPIC, topics, types_consumed_by
from functions.inventory.handlers import HANDLERS as INVENTORY_HANDLERS

FUNCTIONS = {
    "api", "inventory", "payments", "shipping", "order-saga", "notifications", "timeouts",
    "outbox-relay", "dlq", "console",
}


def test_every_type_is_versioned_and_has_its_own_topic() -> None:
    seen_topics: set[str] = set()
    for event_type, spec in CATALOGUE.items():
        assert re.fullmatch(r"shop\.[a-z]+\.[a-z]+\.v\d+", event_type), event_type
        assert spec.type == event_type
        assert spec.topic not in seen_topics
        seen_topics.add(spec.topic)
        assert issubclass(spec.model, BaseModel)
        assert "order_id" in spec.model.model_fields


def test_every_type_has_producers_and_consumers_among_known_functions() -> None:
    for spec in CATALOGUE.values():
        assert spec.producers, spec.type
        assert spec.consumers, spec.type
        assert spec.producers <= FUNCTIONS
        assert spec.consumers <= FUNCTIONS


def test_topics_include_dead_letters_once() -> None:
    names = topics()
    assert names.count(DEAD_LETTER_TOPIC) == 1
    assert len(names) == len(set(names)) == len(CATALOGUE) + 1


def test_inventory_handles_only_what_the_catalogue_routes_to_it() -> None:
    assert set(INVENTORY_HANDLERS) <= set(types_consumed_by("inventory"))
