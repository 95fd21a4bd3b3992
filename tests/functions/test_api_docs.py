"""The generated OpenAPI document, Swagger UI, the cabinet page, routing errors, /healthz
and the one ECS line per request."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from common.settings import Settings
from functions.api.app import ROUTER
from functions.api.openapi import openapi_path
from tests.functions.api_support import (
    api_client,
    bearer,
    problem,
)

pytestmark = pytest.mark.integration

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
_LINKS = re.compile(r'(?:src|href)="([^"]+)"')
_COMMENTS = re.compile(r"<!--.*?-->", re.S)



def test_openapi_document_is_valid_31_and_lists_every_route(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document)  # raises on an invalid document; detects 3.1 from "openapi"
    assert document["openapi"] == "3.1.0"
    declared = {(r.method.lower(), openapi_path(r.path)) for r in ROUTER.routes if not r.hidden}
    listed = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert listed == declared
    assert ("post", "/orders/{order_id}/pay") in listed and ("get", "/openapi.json") in listed
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == scheme | {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for route in ROUTER.routes:
        if route.hidden:
            continue
        operation = document["paths"][openapi_path(route.path)][route.method.lower()]
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        assert all(list(r["content"]) == ["application/problem+json"] for r in errors.values())
        assert ("security" in operation) == (route.auth != "none")
        if route.auth != "none":
            assert "401" in errors
        limit = next((p for p in operation.get("parameters", []) if p["name"] == "limit"), None)
        if limit is not None:
            assert limit["schema"]["maximum"] == 100
    deposit = document["components"]["schemas"]["DepositIn"]["properties"]["amount"]
    assert deposit["type"] == "string"  # money is a decimal string, never a JSON number


@pytest.mark.parametrize("page", ["/docs", "/cabinet"])
def test_pages_use_only_their_own_assets(client: FlaskClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = _COMMENTS.sub("", response.get_data(as_text=True))
    assert "//" not in html  # no http://, https:// or protocol-relative //cdn... URL
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    links = _LINKS.findall(html)
    assert links
    for link in links:  # relative to the page, as a browser resolves them
        asset = client.get("/" + link)
        assert asset.status_code == 200, link
        text = asset.get_data(as_text=True) if asset.mimetype != "image/png" else ""
        if link.endswith(".js") and "swagger" not in link:
            assert "http://" not in text and "https://" not in text
    problem(client.get("/docs/../../etc/passwd"), 404)
    problem(client.get("/assets/main.py"), 404)


def test_served_swagger_ui_renders_openapi_31(client: FlaskClient) -> None:
    bundle = client.get("/docs/swagger-ui-bundle.js").get_data(as_text=True)
    # Swagger UI 4.x (swagger-ui-bundle 1.x) refuses 3.1 documents: "Unable to render this
    # definition. The provided definition does not specify a valid version field."
    assert "isOAS31" in bundle, (
        "the packaged Swagger UI predates 5.0 and cannot show an OpenAPI 3.1 document; "
        "install swagger-ui-bundle-v2 (same import, Swagger UI 5) instead of swagger-ui-bundle")


def test_routing_errors_are_problems(client: FlaskClient) -> None:
    problem(client.get("/no/such/route"), 404)
    problem(client.get("/favicon.ico"), 404)  # answered by Flask itself, still a problem
    problem(client.get("/static/anything"), 404)
    response = client.delete("/orders")
    problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    problem(client.patch(f"/orders/{uuid.uuid4()}"), 405)


def test_healthz(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    down = api_client().get("/healthz")  # a process started on that DATABASE_URL
    problem(down, 503)
    assert down.headers["Retry-After"] == "1"


def test_one_ecs_line_per_request_without_secrets(
    client: FlaskClient, saga_env: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="saga.api")
    headers = bearer(saga_env, "alice") | {"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"}
    client.get("/orders?limit=5", headers=headers)
    name = f"log_{uuid.uuid4().hex[:8]}"
    client.post("/auth/register", json={"username": name, "password": "Sup3r-secret-pw"})
    token = client.post("/auth/token", json={"username": name, "password": "Sup3r-secret-pw"})
    records = [r for r in caplog.records if getattr(r, "event.action", None) == "http.request"]
    assert len(records) == 3
    listing = records[0]
    fields = vars(listing)
    assert fields["event.outcome"] == "success"
    assert fields["http.request.method"] == "GET" and fields["url.path"] == "/orders"
    assert fields["http.response.status_code"] == 200
    assert isinstance(fields["event.duration"], int) and fields["event.duration"] > 0
    assert fields["user.id"] == "alice" and fields["trace.id"] == TRACE_ID
    assert fields["span.id"] != "b7ad6b7169203331"  # our own span, a child of the caller's
    everything = json.dumps([{k: str(v) for k, v in vars(r).items()} for r in caplog.records])
    assert "Sup3r-secret-pw" not in everything
    assert token.get_json()["access_token"] not in everything
    assert headers["Authorization"].split()[1] not in everything
