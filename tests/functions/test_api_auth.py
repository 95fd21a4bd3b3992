"""Bearer-token checks on every protected route, registration, sign-in and lockout."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from common import tables as t
from common.auth import jwt_secret
from common.settings import Settings
from tests.functions.api_support import (
    bearer,
    problem,
)
from tests.helpers import engine_of

pytestmark = pytest.mark.integration



def _claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
            "iat": now, "nbf": now, "exp": now + 600, "roles": ["customer"]} | overrides


def _signed(settings: Settings, key: str | None = None, **overrides: Any) -> str:
    return jwt.encode(_claims(settings, **overrides), key or jwt_secret(settings),
                      algorithm="HS256")


def _alg_none(settings: Settings) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(_claims(settings))}."


@pytest.mark.parametrize("case", [
    "missing", "not-bearer", "garbage", "expired", "wrong-audience", "wrong-issuer",
    "wrong-signature", "alg-none",
])
def test_bad_credentials_are_401_problems_with_a_challenge(
    client: FlaskClient, saga_env: Settings, case: str
) -> None:
    tokens = {
        "garbage": "not-a-jwt",
        "expired": _signed(saga_env, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200,
                           nbf=int(time.time()) - 7200),
        "wrong-audience": _signed(saga_env, aud="someone-else"),
        "wrong-issuer": _signed(saga_env, iss="https://evil.example"),
        "wrong-signature": _signed(saga_env, key="another-secret-" + "y" * 40),
        "alg-none": _alg_none(saga_env),
    }
    headers = {}
    if case == "not-bearer":
        headers["Authorization"] = "Basic YWxpY2U6c2VjcmV0"
    elif case != "missing":
        headers["Authorization"] = f"Bearer {tokens[case]}"
    for method, path in [("GET", "/orders"), ("POST", "/accounts"),
                         ("GET", f"/orders/{uuid.uuid4()}"), ("GET", "/notifications")]:
        response = client.open(path, method=method, headers=headers)
        details = problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="saga-api"')
        for token in tokens.values():  # a token is never echoed back
            assert token not in json.dumps(details)


def test_admin_routes_refuse_customers_with_403(client: FlaskClient, saga_env: Settings) -> None:
    customer = bearer(saga_env, "alice")
    problem(client.post("/products", json={"sku": "X-1", "name": "x", "price": "1.00"},
                        headers=customer), 403)
    problem(client.post("/products/X-1/restock", json={"quantity": 1}, headers=customer), 403)
    # Auth comes before validation: an anonymous caller learns nothing about the body.
    problem(client.post("/products", json={}), 401)


def test_register_then_sign_in(client: FlaskClient, saga_env: Settings) -> None:
    name = f"user_{uuid.uuid4().hex[:8]}"
    created = client.post("/auth/register", json={"username": name, "password": "correct horse"})
    assert created.status_code == 201 and created.get_json() == {"username": name}
    problem(client.post("/auth/register", json={"username": name, "password": "another one"}),
            409)
    with engine_of(saga_env).connect() as conn:
        stored = conn.execute(select(t.users.c.password_hash, t.users.c.roles)
                              .where(t.users.c.username == name)).one()
    assert stored.password_hash.startswith("$argon2id$") and stored.roles == ["customer"]

    response = client.post("/auth/token", json={"username": name, "password": "correct horse"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "bearer" and body["expires_in"] == saga_env.jwt_ttl_s
    assert response.headers["Cache-Control"] == "no-store"
    me = client.get("/orders", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"username": "ab", "password": "long enough"}, "username"),
    ({"username": "has space", "password": "long enough"}, "username"),
    ({"username": "x" * 65, "password": "long enough"}, "username"),
    ({"username": "valid_name", "password": "Pw7Zq!x"}, "password"),
    ({"username": "valid_name"}, "password"),
])
def test_register_validation_names_the_field(
    client: FlaskClient, body: dict[str, str], field: str
) -> None:
    details = problem(client.post("/auth/register", json=body), 422)
    assert details["errors"][0]["field"] == field
    if "password" in body:  # inputs are never echoed: one may be a password
        assert body["password"] not in json.dumps(details)


def test_a_sign_in_name_with_a_nul_is_refused_as_invalid(client: FlaskClient) -> None:
    # Found by schemathesis: the name reached PostgreSQL, which cannot hold a NUL (a 500).
    body = {"username": "ali\x00ce", "password": "whatever it is"}
    details = problem(client.post("/auth/token", json=body), 422)
    assert details["errors"][0]["field"] == "username"


def test_wrong_credentials_and_lockout(client: FlaskClient, saga_env: Settings) -> None:
    name = f"user_{uuid.uuid4().hex[:8]}"
    client.post("/auth/register", json={"username": name, "password": "the right one"})
    unknown = problem(client.post("/auth/token", json={"username": f"nobody_{name}",
                                                       "password": "whatever1"}), 401)
    wrong = problem(client.post("/auth/token", json={"username": name, "password": "wrong one"}),
                    401)
    assert unknown["detail"] == wrong["detail"]  # no hint which part was wrong
    for _ in range(4):  # five consecutive failures in all
        problem(client.post("/auth/token", json={"username": name, "password": "wrong one"}), 401)
    locked = client.post("/auth/token", json={"username": name, "password": "the right one"})
    problem(locked, 429)
    assert 1 <= int(locked.headers["Retry-After"]) <= 30
    # When the lock runs out, the right password works and the count starts again.
    with engine_of(saga_env).begin() as conn:
        conn.execute(update(t.users).where(t.users.c.username == name)
                     .values(locked_until=None))
    assert client.post("/auth/token", json={"username": name, "password": "the right one"}
                       ).status_code == 200
    with engine_of(saga_env).connect() as conn:
        assert conn.execute(select(t.users.c.failed_logins)
                            .where(t.users.c.username == name)).scalar_one() == 0
