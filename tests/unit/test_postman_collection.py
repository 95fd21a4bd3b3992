"""The Postman collection (postman/) and the API cannot drift apart: every request names an
operation of the OpenAPI document the API serves, every operation has a request, and every
request checks its answer. tests/e2e/test_postman.py runs it against a stack."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from functions.api.app import ROUTER, TITLE
from functions.api.openapi import build_document
from tools import REPO_ROOT

POSTMAN = REPO_ROOT / "postman"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
UNKNOWN_ROUTE = "/no-such-route"  # the one request of a path the API must not have


def _collection() -> dict[str, Any]:
    return dict(json.loads((POSTMAN / "order-saga.postman_collection.json").read_text()))


def _requests(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        if "item" in item:  # a folder
            yield from _requests(item["item"])
        else:
            yield item


def _operation(item: dict[str, Any], paths: dict[str, Any]) -> tuple[str, str] | None:
    """(method, OpenAPI path) of a request, matching {{variables}} to {parameters}."""
    request = item["request"]
    path = "/" + "/".join(request["url"]["path"])
    for template in paths:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return request["method"].lower(), template
    return None


def _test_script(item: dict[str, Any]) -> str:
    return "\n".join(line for event in item.get("event", []) if event["listen"] == "test"
                     for line in event["script"]["exec"])


def test_the_collection_is_v2_1_and_the_environment_names_the_local_api() -> None:
    collection = _collection()
    assert collection["info"]["schema"] == SCHEMA
    environment = json.loads((POSTMAN / "local.postman_environment.json").read_text())
    values = {v["key"]: v["value"] for v in environment["values"]}
    assert values == {"baseUrl": "http://localhost:8080"}  # what ./taskw up serves
    raw_urls = [item["request"]["url"]["raw"] for item in _requests(collection["item"])]
    assert all(url.startswith("{{baseUrl}}/") for url in raw_urls), raw_urls


def test_every_request_is_an_operation_of_the_api_and_every_operation_has_one() -> None:
    paths = build_document(ROUTER.routes, title=TITLE)["paths"]
    documented = {(method, path) for path, ops in paths.items() for method in ops}
    exercised: set[tuple[str, str]] = set()
    for item in _requests(_collection()["item"]):
        if item["request"]["url"]["raw"].endswith(UNKNOWN_ROUTE):
            assert _operation(item, paths) is None
            continue
        operation = _operation(item, paths)
        assert operation in documented, f"{item['name']!r} is no operation of the API"
        exercised.add(operation)
    assert documented - exercised == set(), "operations the collection never calls"


def test_every_request_checks_its_answer() -> None:
    collection = _collection()
    shared = "\n".join(line for event in collection["event"] for line in event["script"]["exec"])
    assert "application/problem+json" in shared  # every error answer, for every request
    unchecked = [item["name"] for item in _requests(collection["item"])
                 if "pm.test(" not in _test_script(item)]
    assert not unchecked, unchecked
