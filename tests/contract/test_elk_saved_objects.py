"""The Kibana saved objects: the NDJSON parses, every reference resolves inside the file,
and every panel, query, control and format names only fields of the contract that the
index template maps (so no dashboard waits for a field nobody writes)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.contract import (
    ELK,
    MAPPINGS,
    dashboard_fields,
    load_json,
    mapped_fields,
    saved_objects,
)
from tests.contract.test_elk_kql import kql_to_dsl
from tools.log_contract import FIELDS

OBJECTS = saved_objects()
BY_KEY = {(o["type"], o["id"]): o for o in OBJECTS}
MAPPED = mapped_fields(load_json(MAPPINGS)["template"]["mappings"]["properties"])
LENSES = [o for o in OBJECTS if o["type"] == "lens"]
SEARCHES = [o for o in OBJECTS if o["type"] == "search"]
DASHBOARDS = [o for o in OBJECTS if o["type"] == "dashboard"]
[DATA_VIEW] = [o for o in OBJECTS if o["type"] == "index-pattern"]


def _usable(field: str) -> bool:
    return field in FIELDS and field in MAPPED


def test_the_file_is_what_build_py_writes() -> None:
    result = subprocess.run([sys.executable, str(ELK / "kibana" / "build.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_objects_are_unique_and_importable_by_kibana_8() -> None:
    assert len(BY_KEY) == len(OBJECTS)
    for obj in OBJECTS:
        assert {"id", "type", "attributes", "references"} <= set(obj)
        assert obj["coreMigrationVersion"] == "8.8.0"
        # Not newer than Kibana 8.9 writes, so 8.9+ migrates them forward on import.
        major, minor, _ = (int(p) for p in obj["typeMigrationVersion"].split("."))
        assert (major, minor) <= (8, 9), obj["id"]


def test_every_field_the_dashboards_use_is_a_mapped_contract_field() -> None:
    fields = dashboard_fields()
    assert {"labels.order_id", "event.duration", "error.message"} <= fields
    assert all(_usable(f) for f in fields), sorted(f for f in fields if not _usable(f))


def test_every_reference_resolves_inside_the_file() -> None:
    for obj in OBJECTS:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in BY_KEY, f"{obj['id']} -> {ref}"


def test_the_data_view_is_logs_saga() -> None:
    attributes = DATA_VIEW["attributes"]
    assert attributes["title"] == "logs-saga-*"
    assert attributes["timeFieldName"] == "@timestamp"
    for name in [*json.loads(attributes["fieldFormatMap"]), *json.loads(attributes["fieldAttrs"])]:
        assert _usable(name), name


@pytest.mark.parametrize("lens", LENSES, ids=[o["id"] for o in LENSES])
def test_lens_panels_use_contract_fields_and_valid_queries(lens: dict[str, Any]) -> None:
    state = lens["attributes"]["state"]
    kql_to_dsl(state["query"]["query"])  # raises on a non-contract field
    [(layer_id, layer)] = state["datasourceStates"]["formBased"]["layers"].items()
    assert {"type": "index-pattern", "id": DATA_VIEW["id"],
            "name": f"indexpattern-datasource-layer-{layer_id}"} in lens["references"]
    assert set(layer["columnOrder"]) == set(layer["columns"])
    for column_id, column in layer["columns"].items():
        field = column["sourceField"]
        assert field == "___records___" or _usable(field), f"{column_id}: {field}"
        if column["operationType"] == "terms":
            assert MAPPED[field] in ("keyword", "constant_keyword"), field  # aggregatable
            order = column["params"]["orderBy"]
            assert order["type"] == "alphabetical" or order["columnId"] in layer["columns"]
        if column["operationType"] in ("percentile", "median", "sum"):
            assert MAPPED[field] == "long", field
        if "filter" in column:
            kql_to_dsl(column["filter"]["query"])
    accessors = json.dumps(state["visualization"])
    for column_id in layer["columns"]:
        assert f'"{column_id}"' in accessors, f"column {column_id} is not drawn"


@pytest.mark.parametrize("search", SEARCHES, ids=[o["id"] for o in SEARCHES])
def test_saved_searches_use_contract_fields(search: dict[str, Any]) -> None:
    attributes = search["attributes"]
    assert all(_usable(c) for c in attributes["columns"]), attributes["columns"]
    source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    kql_to_dsl(source["query"]["query"])
    assert source["indexRefName"] in {r["name"] for r in search["references"]}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(dashboard["attributes"]["panelsJSON"])
    return panels


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[o["id"] for o in DASHBOARDS])
def test_dashboards_lay_out_their_panels(dashboard: dict[str, Any]) -> None:
    names = {r["name"]: r for r in dashboard["references"]}
    cells: set[tuple[int, int]] = set()
    for panel in _panels(dashboard):
        ref = names[f"{panel['panelIndex']}:{panel['panelRefName']}"]
        assert ref["type"] == panel["type"]
        grid = panel["gridData"]
        assert grid["x"] + grid["w"] <= 48, panel["panelIndex"]  # Kibana's grid is 48 wide
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not mine & cells, f"{panel['panelIndex']} overlaps another panel"
        cells |= mine


def test_the_three_dashboards_a_person_asked_for() -> None:
    titles = {d["id"]: d["attributes"]["title"] for d in DASHBOARDS}
    assert titles == {"saga-overview": "Order saga: overview",
                      "saga-order-trail": "Order saga: one order's trail",
                      "saga-errors": "Order saga: errors and dead letters"}
    overview = {p["panelRefName"] for p in _panels(BY_KEY[("dashboard", "saga-overview")])}
    assert len(overview) == 9


def test_the_trail_has_an_order_picker() -> None:
    trail = BY_KEY[("dashboard", "saga-order-trail")]
    group = trail["attributes"]["controlGroupInput"]
    [control] = json.loads(group["panelsJSON"]).values()
    assert control["type"] == "optionsListControl"
    assert control["explicitInput"]["fieldName"] == "labels.order_id"
    assert MAPPED["labels.order_id"] == "keyword"
    ref = f"controlGroup_{control['explicitInput']['id']}:optionsListDataView"
    assert {"name": ref, "type": "index-pattern", "id": DATA_VIEW["id"]} in trail["references"]
    searches = [r["id"] for r in trail["references"] if r["type"] == "search"]
    assert searches == ["saga-order-trail-requests", "saga-order-trail-lines"]
    for search in searches:
        assert BY_KEY[("search", search)]["attributes"]["sort"] == [["@timestamp", "asc"]]


def test_the_trail_names_each_trace_and_the_trace_it_links_to() -> None:
    """docs/observability.md, "One order, its traces": the traces table, and the linked
    trace beside each request and line."""
    trail = BY_KEY[("dashboard", "saga-order-trail")]
    assert {"type": "lens", "id": "saga-order-trail-traces"} in [
        {"type": r["type"], "id": r["id"]} for r in trail["references"]]
    for search in ("saga-order-trail-requests", "saga-order-trail-lines"):
        columns = BY_KEY[("search", search)]["attributes"]["columns"]
        assert {"trace.id", "span.links.trace.id"} <= set(columns), search
