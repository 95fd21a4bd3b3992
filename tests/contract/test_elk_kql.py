"""What Kibana would ask Elasticsearch for each saved panel: the KQL subset our saved objects
use, compiled to query DSL, and a Lens layer compiled to its aggregation, with the answer
read back as the rows Lens would draw. test_elk_queries.py runs these against osmem-server;
the tests here pin the translation itself.

Supported, because the dashboards use it (anything else is a loud error, not a guess):
KQL  `field : value`, `field : "quoted"`, `field : prefix*`, `field : *`,
     `field : (a or b)`, `and`, `or`, `not`, parentheses.
Lens date_histogram, terms (size, order by a column or by value, missing bucket), count,
     unique_count, percentile, median, min, max, sum; a column's own KQL filter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from tools.log_contract import FIELDS

Dsl = dict[str, Any]
_TOKEN = re.compile(r'\s*(?:(\()|(\))|(:)|"((?:[^"\\]|\\.)*)"|([^\s():"]+))')
MISSING = "__missing__"


class KqlError(ValueError):
    pass


@dataclass
class _Token:
    kind: str  # ( ) : str word
    text: str


def _tokens(query: str) -> list[_Token]:
    tokens, position = [], 0
    query = query.strip()
    while position < len(query):
        match = _TOKEN.match(query, position)
        if not match or match.end() == position:
            raise KqlError(f"cannot read {query[position:]!r}")
        position = match.end()
        opened, closed, colon, quoted, word = match.groups()
        if opened:
            tokens.append(_Token("(", "("))
        elif closed:
            tokens.append(_Token(")", ")"))
        elif colon:
            tokens.append(_Token(":", ":"))
        elif quoted is not None:
            tokens.append(_Token("str", quoted.replace('\\"', '"')))
        else:
            tokens.append(_Token("word", word))
    return tokens


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens = _tokens(query)
        self.at = 0

    def peek(self, *words: str) -> bool:
        token = self.tokens[self.at] if self.at < len(self.tokens) else None
        return token is not None and (token.kind in words or
                                      (token.kind == "word" and token.text.lower() in words))

    def take(self) -> _Token:
        if self.at >= len(self.tokens):
            raise KqlError("unexpected end of query")
        self.at += 1
        return self.tokens[self.at - 1]

    def expression(self) -> Dsl:
        parts = [self.conjunction()]
        while self.peek("or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else {
            "bool": {"should": parts, "minimum_should_match": 1}}

    def conjunction(self) -> Dsl:
        parts = [self.negation()]
        while self.peek("and"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else {"bool": {"filter": parts}}

    def negation(self) -> Dsl:
        if self.peek("not"):
            self.take()
            return {"bool": {"must_not": [self.negation()]}}
        if self.peek("("):
            self.take()
            inner = self.expression()
            if self.take().kind != ")":
                raise KqlError("missing )")
            return inner
        return self.comparison()

    def comparison(self) -> Dsl:
        field = self.take()
        if field.kind != "word" or self.take().kind != ":":
            raise KqlError(f"expected `field :` at {field.text!r}")
        if field.text not in FIELDS:
            raise KqlError(f"{field.text} is not a contract field")
        if self.peek("("):
            self.take()
            values = [self.value(field.text)]
            while self.peek("or"):
                self.take()
                values.append(self.value(field.text))
            if self.take().kind != ")":
                raise KqlError("missing ) after values")
            return values[0] if len(values) == 1 else {
                "bool": {"should": values, "minimum_should_match": 1}}
        return self.value(field.text)

    def value(self, field: str) -> Dsl:
        token = self.take()
        if token.kind == "word" and token.text == "*":
            return {"exists": {"field": field}}
        if token.kind == "word" and "*" in token.text:
            return {"wildcard": {field: {"value": token.text}}}
        if token.kind not in ("word", "str"):
            raise KqlError(f"expected a value for {field}")
        if FIELDS[field].type == "text":
            return {"match_phrase": {field: token.text}}
        return {"term": {field: token.text}}


def kql_to_dsl(query: str) -> Dsl:
    """The query DSL Kibana sends for a KQL query (our subset)."""
    if not query.strip():
        return {"match_all": {}}
    parser = _Parser(query)
    result = parser.expression()
    if parser.at != len(parser.tokens):
        raise KqlError(f"unexpected {parser.tokens[parser.at].text!r}")
    return result


# --- Lens --------------------------------------------------------------------------------


def _layer(lens: dict[str, Any]) -> dict[str, Any]:
    [layer] = lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values()
    return dict(layer)


def _metric_agg(column: dict[str, Any]) -> Dsl | None:
    field, operation = column["sourceField"], column["operationType"]
    simple = {"unique_count": "cardinality", "min": "min", "max": "max", "sum": "sum",
              "average": "avg"}
    if operation == "count":
        return None  # a bucket's doc_count
    if operation in simple:
        return {simple[operation]: {"field": field}}
    if operation in ("percentile", "median"):
        percent = column["params"]["percentile"] if operation == "percentile" else 50
        return {"percentiles": {"field": field, "percents": [percent]}}
    raise KqlError(f"Lens operation {operation} is not supported here")


def _metrics_aggs(columns: dict[str, Any], metric_ids: list[str]) -> Dsl:
    aggs: Dsl = {}
    for column_id in metric_ids:
        column, inner = columns[column_id], _metric_agg(columns[column_id])
        if "filter" in column:
            aggs[column_id] = {"filter": kql_to_dsl(column["filter"]["query"]),
                               **({"aggs": {"v": inner}} if inner else {})}
        elif inner is not None:
            aggs[column_id] = inner
    return aggs


def _bucket_agg(column: dict[str, Any], columns: dict[str, Any]) -> Dsl:
    if column["operationType"] == "date_histogram":
        interval = column["params"]["interval"]
        return {"date_histogram": {"field": column["sourceField"], "min_doc_count": 1,
                                   "fixed_interval": "1h" if interval == "auto" else interval}}
    if column["operationType"] != "terms":
        raise KqlError(f"Lens bucket {column['operationType']} is not supported here")
    params = column["params"]
    terms: Dsl = {"field": column["sourceField"], "size": params["size"]}
    order = params["orderBy"]
    if order["type"] == "alphabetical":
        terms["order"] = {"_key": params["orderDirection"]}
    else:
        by = columns[order["columnId"]]
        key = "_count" if by["operationType"] == "count" and "filter" not in by else (
            order["columnId"])
        terms["order"] = {key: params["orderDirection"]}
    if params.get("missingBucket"):
        terms["missing"] = MISSING
    return {"terms": terms}


def lens_request(lens: dict[str, Any], filters: list[Dsl], time_from: str = "now-24h") -> Dsl:
    """The search body for one Lens panel: its query, the dashboard's filters and time range,
    its buckets nested in column order, its metrics inside the innermost bucket."""
    layer = _layer(lens)
    columns, order = layer["columns"], layer["columnOrder"]
    buckets = [c for c in order if columns[c]["isBucketed"]]
    metrics = [c for c in order if not columns[c]["isBucketed"]]
    aggs = _metrics_aggs(columns, metrics)
    for column_id in reversed(buckets):
        aggs = {column_id: {**_bucket_agg(columns[column_id], columns),
                            **({"aggs": aggs} if aggs else {})}}
    query = lens["attributes"]["state"]["query"]["query"]
    return {"size": 0, "track_total_hits": True, "aggs": aggs, "query": {"bool": {"filter": [
        kql_to_dsl(query), {"range": {"@timestamp": {"gte": time_from, "lte": "now"}}},
        *filters]}}}


def _metric_value(column: dict[str, Any], node: dict[str, Any], column_id: str) -> Any:
    if column["operationType"] == "count":
        return node[column_id]["doc_count"] if "filter" in column else node["doc_count"]
    agg = node[column_id]["v"] if "filter" in column else node[column_id]
    if "values" in agg:
        [value] = agg["values"].values()
        return value
    return agg.get("value_as_string", agg["value"])


def lens_rows(lens: dict[str, Any], response: dict[str, Any]) -> list[dict[str, Any]]:
    """The table Lens would draw: one row per innermost bucket, column id -> value."""
    layer = _layer(lens)
    columns, order = layer["columns"], layer["columnOrder"]
    buckets = [c for c in order if columns[c]["isBucketed"]]
    metrics = [c for c in order if not columns[c]["isBucketed"]]

    def walk(node: dict[str, Any], depth: int, row: dict[str, Any]) -> list[dict[str, Any]]:
        if depth == len(buckets):
            return [row | {m: _metric_value(columns[m], node, m) for m in metrics}]
        out: list[dict[str, Any]] = []
        for bucket in node[buckets[depth]]["buckets"]:
            key = bucket.get("key_as_string", bucket["key"])
            out += walk(bucket, depth + 1, row | {buckets[depth]: key})
        return out

    root = response.get("aggregations", {}) | {"doc_count": response["hits"]["total"]["value"]}
    return walk(root, 0, {})


def search_request(search: dict[str, Any], filters: list[Dsl],
                   time_from: str = "now-24h") -> Dsl:
    """The Discover request of a saved search: its query, filters, time range and sort."""
    source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    [[field, direction]] = search["attributes"]["sort"]
    return {"size": 500, "sort": [{field: {"order": direction}}], "query": {"bool": {"filter": [
        kql_to_dsl(source["query"]["query"]),
        {"range": {"@timestamp": {"gte": time_from, "lte": "now"}}}, *filters]}}}


# --- the translation itself --------------------------------------------------------------


@pytest.mark.parametrize(("query", "dsl"), [
    ("", {"match_all": {}}),
    ('event.action : "saga.dlq"', {"term": {"event.action": "saga.dlq"}}),
    ("event.action : saga.step.*", {"wildcard": {"event.action": {"value": "saga.step.*"}}}),
    ("labels.order_id : *", {"exists": {"field": "labels.order_id"}}),
    ('message : "handled"', {"match_phrase": {"message": "handled"}}),
    ('event.outcome : "failure" or log.level : ("error" or "critical")',
     {"bool": {"minimum_should_match": 1, "should": [
         {"term": {"event.outcome": "failure"}},
         {"bool": {"minimum_should_match": 1, "should": [
             {"term": {"log.level": "error"}}, {"term": {"log.level": "critical"}}]}}]}}),
    ('service.name : api and not labels.duplicate : "true"',
     {"bool": {"filter": [{"term": {"service.name": "api"}},
                          {"bool": {"must_not": [{"term": {"labels.duplicate": "true"}}]}}]}}),
])
def test_kql_translation(query: str, dsl: Dsl) -> None:
    assert kql_to_dsl(query) == dsl


@pytest.mark.parametrize("query", [
    "order.total : 5", 'event.action : "x" and', "event.action", "(event.action : x",
    "event.action : (a or b",
])
def test_kql_outside_the_subset_or_the_contract_is_an_error(query: str) -> None:
    with pytest.raises(KqlError):
        kql_to_dsl(query)


def test_a_lens_layer_becomes_nested_aggregations() -> None:
    lens = {"attributes": {"state": {"query": {"query": "event.action : saga.step.*"},
        "datasourceStates": {"formBased": {"layers": {"l": {
            "columnOrder": ["fn", "p95", "n"],
            "columns": {
                "fn": {"isBucketed": True, "operationType": "terms",
                       "sourceField": "service.name",
                       "params": {"size": 5, "orderBy": {"type": "column", "columnId": "n"},
                                  "orderDirection": "desc", "missingBucket": True}},
                "p95": {"isBucketed": False, "operationType": "percentile",
                        "sourceField": "event.duration", "params": {"percentile": 95}},
                "n": {"isBucketed": False, "operationType": "count",
                      "sourceField": "___records___", "params": {}}}}}}}}}}
    body = lens_request(lens, [])
    assert body["aggs"] == {"fn": {
        "terms": {"field": "service.name", "size": 5, "order": {"_count": "desc"},
                  "missing": MISSING},
        "aggs": {"p95": {"percentiles": {"field": "event.duration", "percents": [95]}}}}}
    response = {"hits": {"total": {"value": 3}}, "aggregations": {"fn": {"buckets": [
        {"key": "inventory", "doc_count": 3, "p95": {"values": {"95.0": 7.0}}}]}}}
    assert lens_rows(lens, response) == [{"fn": "inventory", "p95": 7.0, "n": 3}]
