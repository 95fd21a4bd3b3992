"""The console's pure parts: masking a letter's data, naming the function a letter failed
at, the filter's statuses and order ids, the Kibana link, durations as a person reads
them, and the functions' state read from a local runtime's state file."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from common.settings import Settings
from functions.console.filters import OrderFilter, decode_cursor, encode_cursor, statuses
from functions.console.letters import mask
from functions.console.order_view import kibana
from functions.console.runtime_view import functions_state, local_functions
from functions.console.stuck import function_of, human


def test_a_letters_data_is_masked_but_for_its_order() -> None:
    data = {"order_id": "o-1", "customer_id": "alice", "amount": "12.50", "express": True,
            "items": [{"sku": "MUG-001", "quantity": 2}], "note": None}
    assert mask(data) == {
        "order_id": "o-1", "customer_id": "*** (5 characters)",
        "amount": "*** (5 characters)", "express": True,
        "items": [{"sku": "*** (7 characters)", "quantity": "*** (int)"}], "note": None}
    assert mask("a secret letter") == "*** (15 characters)"


def test_the_function_a_letter_failed_at() -> None:
    local = {"127.0.0.1:41000": "inventory"}
    assert function_of("http://127.0.0.1:41000", local) == "inventory"
    assert function_of("http://payments.order-saga.svc.cluster.local/", {}) == "payments"
    assert function_of("http://127.0.0.1:1", local) == "127.0.0.1:1"
    assert function_of(None, local) is None


def test_the_filters_statuses_and_ids_say_what_is_wrong() -> None:
    assert [s.value for s in statuses("open")] == [
        "CREATED", "AWAITING_PAYMENT", "PAYMENT_PROCESSING", "PAID"]
    assert [s.value for s in statuses("paid, completed")] == ["PAID", "COMPLETED"]
    with pytest.raises(ValidationError, match="'LOST' is no status"):
        OrderFilter(status="PAID,LOST")
    with pytest.raises(ValidationError, match="too short for an order id prefix"):
        OrderFilter(id="6fc4")
    assert OrderFilter(customer="bob", older_than_s=60).given() == {
        "customer": "bob", "older_than_s": 60}
    at = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    row_id = "6fc43fbf-0000-4000-8000-000000000001"
    assert decode_cursor(encode_cursor(at, row_id)) == (at, uuid.UUID(row_id))
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor("eyJub3QiOiAiYSBjdXJzb3IifQ")


def test_the_kibana_link_filters_discover_on_the_order() -> None:
    placed = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    bare = kibana(None, "o-1", placed)
    assert (bare.query, bare.url) == ('labels.order_id : "o-1"', None)
    link = kibana("https://kibana.example/", "o-1", placed).url
    assert link is not None and link.startswith("https://kibana.example/app/discover#/?_g=(")
    assert "index:'saga-logs'" in link and "from:'2026-12-07T09:55:00Z'" in link
    assert "labels.order_id%20:%20%22o-1%22" in link


def test_durations_read_as_a_person_says_them() -> None:
    assert [human(s) for s in (5, 119, 600, 7199, 7200, 200000)] == [
        "5 s", "119 s", "10 min", "119 min", "2 h", "2 days"]


def test_functions_come_from_a_local_runtimes_state_file_only(tmp_path: Path) -> None:
    (tmp_path / "runtime-state.json").write_text(json.dumps({"functions": {
        "inventory": {"state": "scaled_to_zero", "port": 41000},
        "api": {"state": "running", "port": 8080}}}))
    local = Settings(runtime_state_file=tmp_path / "runtime-state.json")
    functions, note = functions_state(local)
    assert [(f.name, f.state) for f in functions] == [("api", "running"),
                                                      ("inventory", "scaled_to_zero")]
    assert note is None and local_functions(local)["localhost:41000"] == "inventory"
    cluster = Settings(runtime_state_file=None, jwt_secret="x" * 40)
    functions, note = functions_state(cluster)
    assert functions == [] and note is not None and "kn service list" in note
