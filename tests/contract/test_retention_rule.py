"""The retention windows are derived from the topics, not guessed (docs/operations.md,
"Retention"): every consumer keeps its inbox rows for as long as a record of the topics its
KafkaSource reads may still be delivered (Kafka deletes a segment once its newest record is
past retention.ms, so a record lives up to retention.ms + segment.ms), plus a margin; in
every overlay, with the windows saga-config sets and with the settings' defaults. Raising a
topic's retention (or its segment.ms) without raising the windows fails here."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import pytest

from common.events import catalogue as c
from common.settings import DAY_S, Settings
from functions.retention.rules import dead_letters_window_s, inbox_window_s
from tests.contract.k8s_support import OVERLAYS, by_kind, rendered
from tools.deploy.manifests import Doc

# Kafka's log.roll.ms default (log.roll.hours 168): a topic without segment.ms rolls weekly.
BROKER_DEFAULT_SEGMENT_MS = 7 * DAY_S * 1000
# Beyond the record's life: the broker's retention check (every 5 minutes by default), clocks
# that differ between producers, the broker and PostgreSQL, a deletion the broker runs late.
MARGIN_S = DAY_S


def record_lifetime_s(config: Mapping[str, object]) -> float:
    """The longest a record of a topic with this configuration may still be delivered."""
    segment = int(str(config.get("segment.ms", BROKER_DEFAULT_SEGMENT_MS)))
    return (int(str(config["retention.ms"])) + segment) / 1000


def required_inbox_windows(docs: list[Doc]) -> dict[str, float]:
    """For each consumer (a KafkaSource's sink): the least its inbox must keep its rows."""
    topics = {t["spec"]["topicName"]: t["spec"]["config"]
              for t in by_kind(docs, "kafka.strimzi.io", "KafkaTopic").values()}
    need: dict[str, float] = {}
    for source in by_kind(docs, "sources.knative.dev", "KafkaSource").values():
        consumer = source["spec"]["sink"]["ref"]["name"]
        longest = max(record_lifetime_s(topics[name]) for name in source["spec"]["topics"])
        need[consumer] = max(need.get(consumer, 0.0), longest + MARGIN_S)
    return need


def shortfalls(docs: list[Doc], settings: Settings) -> list[str]:
    return [f"{consumer}: keeps inbox rows {inbox_window_s(settings, consumer)} s, its topics "
            f"may deliver a record for {need:.0f} s (margin included)"
            for consumer, need in sorted(required_inbox_windows(docs).items())
            if inbox_window_s(settings, consumer) < need]


def configured(docs: list[Doc]) -> Settings:
    """The settings a deployed function reads from saga-config (the SAGA_ names)."""
    data = by_kind(docs, "", "ConfigMap")["saga-config"]["data"]
    fields = {name[len("SAGA_"):].lower(): value for name, value in data.items()
              if name.startswith("SAGA_RETENTION_")}
    assert fields, "saga-config sets no SAGA_RETENTION_* window"
    return Settings.model_validate(fields)


def defaults() -> Settings:
    return Settings.model_construct(**{name: field.default for name, field in
                                       Settings.model_fields.items()})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_inbox_outlives_the_records_its_consumer_may_be_delivered(overlay: str) -> None:
    docs = rendered(overlay)
    need = required_inbox_windows(docs)
    # Every consumer is covered, the dlq function by its own (longer) window.
    assert set(need) == {s for e in c.CATALOGUE.values() for s in e.consumers} - {
        c.API, c.TIMEOUTS} | {c.DLQ}
    assert need[c.DLQ] > need[c.INVENTORY]
    assert shortfalls(docs, configured(docs)) == []
    assert shortfalls(docs, defaults()) == []


def test_a_topic_that_keeps_its_records_longer_fails_the_rule() -> None:
    docs = rendered("dev")
    longer = copy.deepcopy(docs)
    topic = by_kind(longer, "kafka.strimzi.io", "KafkaTopic")["shop.order.paid.v1"]
    topic["spec"]["config"]["retention.ms"] = str(10 * DAY_S * 1000)
    found = shortfalls(longer, configured(longer))
    assert found and all(f.startswith(("inventory:", "shipping:")) for f in found), found
    # A topic that drops segment.ms rolls weekly: its records live a week longer.
    weekly = copy.deepcopy(docs)
    dead = by_kind(weekly, "kafka.strimzi.io", "KafkaTopic")[c.DEAD_LETTER_TOPIC]
    del dead["spec"]["config"]["segment.ms"]
    assert [f.split(":")[0] for f in shortfalls(weekly, configured(weekly))] == [c.DLQ]


def test_dead_letters_are_kept_longer_than_any_inbox_row() -> None:
    """A re-driven event is in its topic again; its consumers' inbox rows are protected only
    while its letter is stored, so a letter must outlive every inbox window."""
    for settings in (configured(rendered("dev")), defaults()):
        assert settings.retention_dead_letters_s >= max(settings.retention_inbox_s,
                                                        settings.retention_dead_letter_inbox_s)
        assert dead_letters_window_s(settings) == settings.retention_dead_letters_s


def test_the_short_windows_are_what_the_docs_promise() -> None:
    """Published outbox rows (saga trace) and idempotency keys (a client's retries)."""
    for settings in (configured(rendered("dev")), defaults()):
        assert settings.retention_idempotency_s == DAY_S
        assert 2 * DAY_S <= settings.retention_outbox_s <= 7 * DAY_S
