"""Builders for Kibana 8.x saved objects (data view, Lens, saved search, dashboard), in the
shape Kibana's own export writes (coreMigrationVersion 8.8.0; Lens and dashboards at
typeMigrationVersion 8.9.0), so POST /api/saved_objects/_import takes them from Kibana 8.9
on and migrates them forward. Used by build.py; no Kibana needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DATA_VIEW_ID = "saga-logs"
LAYER = "layer1"
MIGRATION = {"coreMigrationVersion": "8.8.0"}
TYPE_VERSIONS = {"index-pattern": "8.0.0", "lens": "8.9.0", "dashboard": "8.9.0",
                 "search": "7.9.3"}
Column = dict[str, Any]


def saved_object(type_: str, id_: str, attributes: dict[str, Any],
                 references: list[dict[str, str]]) -> dict[str, Any]:
    return {"id": id_, "type": type_, "attributes": attributes, "references": references,
            "managed": False, **MIGRATION, "typeMigrationVersion": TYPE_VERSIONS[type_]}


def kql(query: str) -> dict[str, str]:
    return {"query": query, "language": "kuery"}


# --- Lens columns ------------------------------------------------------------------------


def date_histogram(interval: str = "auto") -> Column:
    return {"label": "@timestamp", "dataType": "date", "operationType": "date_histogram",
            "sourceField": "@timestamp", "isBucketed": True, "scale": "interval",
            "params": {"interval": interval, "includeEmptyRows": True, "dropPartials": False}}


def terms(field_name: str, label: str, *, size: int = 10, order_by: str | None = None,
          direction: str = "desc", missing: bool = False) -> Column:
    """Top values of `field_name`, ordered by the metric column `order_by` (or by value)."""
    order: dict[str, Any] = ({"type": "column", "columnId": order_by} if order_by
                             else {"type": "alphabetical", "fallback": False})
    return {"label": label, "customLabel": True, "dataType": "string",
            "operationType": "terms", "sourceField": field_name, "isBucketed": True,
            "scale": "ordinal",
            "params": {"size": size, "orderBy": order, "orderDirection": direction,
                       "otherBucket": False, "missingBucket": missing,
                       "parentFormat": {"id": "terms"}}}


def metric(operation: str, label: str, field_name: str = "___records___", *,
           kuery: str | None = None, **params: Any) -> Column:
    """count, unique_count, percentile (percentile=95), median, min, max, sum."""
    data_type = "date" if field_name == "@timestamp" else "number"
    column: Column = {"label": label, "customLabel": True, "dataType": data_type,
                      "operationType": operation, "sourceField": field_name,
                      "isBucketed": False, "scale": "ratio",
                      "params": {"emptyAsNull": True, **params} if operation == "count"
                      else params}
    if kuery is not None:
        column["filter"] = kql(kuery)
    return column


# --- Lens visualisations -----------------------------------------------------------------


@dataclass
class Lens:
    id: str
    title: str
    description: str
    query: str
    columns: dict[str, Column]
    kind: str  # xy, table, metric
    series: str = "bar_stacked"
    sort: tuple[str, str] | None = None  # datatable: (column id, asc|desc)
    extra: dict[str, Any] = field(default_factory=dict)

    def visualization(self) -> dict[str, Any]:
        ids = list(self.columns)
        buckets = [c for c in ids if self.columns[c]["isBucketed"]]
        metrics = [c for c in ids if not self.columns[c]["isBucketed"]]
        layer: dict[str, Any] = {"layerId": LAYER, "layerType": "data"}
        if self.kind == "metric":
            return {**layer, "metricAccessor": metrics[0]}
        if self.kind == "table":
            table: dict[str, Any] = {**layer, "columns": [{"columnId": c} for c in ids]}
            if self.sort:
                table["sorting"] = {"columnId": self.sort[0], "direction": self.sort[1]}
            return table
        xy_layer = {**layer, "seriesType": self.series, "xAccessor": buckets[0],
                    "accessors": metrics}
        if len(buckets) > 1:
            xy_layer["splitAccessor"] = buckets[1]
        return {"legend": {"isVisible": True, "position": "right"}, "valueLabels": "hide",
                "fittingFunction": "None", "preferredSeriesType": self.series,
                "layers": [xy_layer]}

    def saved_object(self) -> dict[str, Any]:
        kinds = {"xy": "lnsXY", "table": "lnsDatatable", "metric": "lnsMetric"}
        state = {
            "datasourceStates": {"formBased": {"layers": {LAYER: {
                "columns": self.columns, "columnOrder": list(self.columns),
                "incompleteColumns": {}, "sampling": 1}}}},
            "visualization": self.visualization(),
            "query": kql(self.query), "filters": [], "internalReferences": [],
            "adHocDataViews": {},
        }
        return saved_object("lens", self.id, {
            "title": self.title, "description": self.description,
            "visualizationType": kinds[self.kind], "state": state,
        }, [{"type": "index-pattern", "id": DATA_VIEW_ID,
             "name": f"indexpattern-datasource-layer-{LAYER}"}])


@dataclass
class Search:
    """A saved search (Discover): raw lines, for trails and error lists."""

    id: str
    title: str
    description: str
    query: str
    columns: list[str]
    sort: str = "asc"

    def saved_object(self) -> dict[str, Any]:
        source = {"query": kql(self.query), "filter": [],
                  "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"}
        return saved_object("search", self.id, {
            "title": self.title, "description": self.description, "columns": self.columns,
            "sort": [["@timestamp", self.sort]], "grid": {}, "hideChart": True,
            "isTextBasedQuery": False,
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
        }, [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern",
             "id": DATA_VIEW_ID}])


@dataclass
class Panel:
    object: Lens | Search
    x: int
    y: int
    w: int
    h: int


def dashboard(id_: str, title: str, description: str, panels: list[Panel], *,
              controls: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """A dashboard of saved panels (by reference) and options-list controls (field, title)."""
    entries: list[dict[str, Any]] = []
    references: list[dict[str, str]] = []
    for index, panel in enumerate(panels, start=1):
        key = f"p{index}"
        type_ = "lens" if isinstance(panel.object, Lens) else "search"
        entries.append({"version": "8.9.0", "type": type_, "panelIndex": key,
                        "gridData": {"x": panel.x, "y": panel.y, "w": panel.w, "h": panel.h,
                                     "i": key},
                        "embeddableConfig": {"enhancements": {}},
                        "panelRefName": f"panel_{key}"})
        references.append({"name": f"{key}:panel_{key}", "type": type_,
                           "id": panel.object.id})
    attributes: dict[str, Any] = {
        "title": title, "description": description, "version": 1,
        "panelsJSON": json.dumps(entries),
        "optionsJSON": json.dumps({"useMargins": True, "syncColors": False,
                                   "syncCursor": True, "syncTooltips": False,
                                   "hidePanelTitles": False}),
        "timeRestore": True, "timeFrom": "now-24h", "timeTo": "now",
        "refreshInterval": {"pause": False, "value": 60000},
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(
            {"query": kql(""), "filter": []})},
    }
    if controls:
        control_panels = {}
        for order, (field_name, label) in enumerate(controls):
            control_id = f"control-{field_name.replace('.', '-')}"
            control_panels[control_id] = {
                "order": order, "width": "large", "grow": True, "type": "optionsListControl",
                "explicitInput": {"id": control_id, "fieldName": field_name, "title": label,
                                  "singleSelect": True, "selectedOptions": [],
                                  "searchTechnique": "prefix", "dataViewId": DATA_VIEW_ID}}
            references.append({"name": f"controlGroup_{control_id}:optionsListDataView",
                               "type": "index-pattern", "id": DATA_VIEW_ID})
        attributes["controlGroupInput"] = {
            "controlStyle": "oneLine", "chainingSystem": "HIERARCHICAL",
            "showApplySelections": False,
            "ignoreParentSettingsJSON": json.dumps({
                "ignoreFilters": False, "ignoreQuery": False, "ignoreTimerange": False,
                "ignoreValidations": False}),
            "panelsJSON": json.dumps(control_panels),
        }
    return saved_object("dashboard", id_, attributes, references)


def data_view(title: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """The data view on `title`; event.duration shown in ms (it is stored in ns)."""
    formats = {"event.duration": {"id": "duration", "params": {
        "inputFormat": "nanoseconds", "outputFormat": "asMilliseconds", "outputPrecision": 1}}}
    return saved_object("index-pattern", DATA_VIEW_ID, {
        "title": title, "name": name, "timeFieldName": "@timestamp", "allowNoIndex": True,
        "fieldFormatMap": json.dumps(formats),
        "fieldAttrs": json.dumps({k: {"customLabel": v} for k, v in labels.items()}),
        "sourceFilters": "[]", "runtimeFieldMap": "{}",
    }, [])
