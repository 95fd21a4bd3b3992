"""Attacks on the api's bearer tokens, each of which must be refused (401), and a customer's
attempts on another customer's order (404: its existence is not theirs to learn; nothing
changes). The token is always sent to a route that would otherwise answer 200."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient

from common.auth import jwt_secret
from common.settings import Settings
from tests.functions.api_support import bearer, customer, place, problem, product

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_RSA_PUBLIC_PEM = _RSA.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "victim", "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
            "iat": now, "nbf": now, "exp": now + 600, "roles": ["customer"]} | overrides


def _hs256_by_hand(key: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An HS256 token signed with any bytes as the key (PyJWT refuses PEM keys for HMAC,
    which is exactly the confusion an attacker tries)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _unsigned(alg: str, settings: Settings) -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(_claims(settings)).encode())}."


def _tampered(settings: Settings) -> str:
    """A valid token of 'victim' whose payload is swapped for 'mallory' with admin rights,
    keeping the original signature."""
    token = jwt.encode(_claims(settings), jwt_secret(settings), algorithm="HS256")
    header, _, signature = token.split(".")
    forged = _b64(json.dumps(_claims(settings, sub="mallory",
                                     roles=["customer", "admin"])).encode())
    return f"{header}.{forged}.{signature}"


ATTACKS: dict[str, Callable[[Settings], str]] = {
    "alg-none": lambda s: _unsigned("none", s),
    "alg-none-uppercase": lambda s: _unsigned("NONE", s),
    "rs256-without-jwks": lambda s: jwt.encode(_claims(s), _RSA, algorithm="RS256"),
    "hs256-signed-with-rsa-public-key": lambda s: _hs256_by_hand(
        _RSA_PUBLIC_PEM, {"alg": "HS256", "typ": "JWT"}, _claims(s)),
    "wrong-key": lambda s: jwt.encode(_claims(s), "another-secret-" + "y" * 40,
                                      algorithm="HS256"),
    "hs512-with-right-key": lambda s: jwt.encode(_claims(s), jwt_secret(s),
                                                 algorithm="HS512"),
    "expired": lambda s: jwt.encode(_claims(s, exp=int(time.time()) - 60),
                                    jwt_secret(s), algorithm="HS256"),
    "not-yet-valid": lambda s: jwt.encode(_claims(s, nbf=int(time.time()) + 600),
                                          jwt_secret(s), algorithm="HS256"),
    "wrong-audience": lambda s: jwt.encode(_claims(s, aud="someone-else"),
                                           jwt_secret(s), algorithm="HS256"),
    "wrong-issuer": lambda s: jwt.encode(_claims(s, iss="https://evil.example"),
                                         jwt_secret(s), algorithm="HS256"),
    "no-expiry": lambda s: jwt.encode({k: v for k, v in _claims(s).items() if k != "exp"},
                                      jwt_secret(s), algorithm="HS256"),
    "tampered-payload": _tampered,
    "signature-stripped": lambda s: jwt.encode(
        _claims(s), jwt_secret(s), algorithm="HS256").rsplit(".", 1)[0] + ".",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_forged_tokens_are_refused(client: FlaskClient, saga_env: Settings,
                                   attack: str) -> None:
    token = ATTACKS[attack](saga_env)
    for method, path in (("GET", "/orders"), ("GET", "/accounts/me"),
                         ("POST", "/products")):
        response = client.open(path, method=method, headers={"Authorization": f"Bearer {token}"},
                               json={} if method == "POST" else None)
        problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_untampered_token_is_accepted(client: FlaskClient, saga_env: Settings) -> None:
    """The control: the same claims, honestly signed, pass (so the refusals above are the
    attacks' doing, not a broken route)."""
    token = jwt.encode(_claims(saga_env), jwt_secret(saga_env), algorithm="HS256")
    assert client.get("/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_customer_cannot_read_pay_or_cancel_another_customers_order(
    client: FlaskClient, saga_env: Settings
) -> None:
    owner, intruder = customer(), customer()
    order = place(client, bearer(saga_env, owner), product(saga_env), payment_mode="confirm")
    theirs = bearer(saga_env, intruder)
    path = f"/orders/{order['id']}"

    problem(client.get(path, headers=theirs), 404)
    problem(client.put(path, headers=theirs, json={"status": "CANCELLED"}), 404)
    problem(client.post(f"{path}/pay", headers=theirs), 404)
    listed = client.get("/orders", headers=theirs).get_json()
    assert all(o["id"] != order["id"] for o in listed["items"])
    # Nothing changed: the owner still sees the order as it was.
    mine = client.get(path, headers=bearer(saga_env, owner)).get_json()
    assert mine["status"] == "CREATED"
    assert [h["to_status"] for h in mine["timeline"]] == ["CREATED"]


def test_a_customer_cannot_use_admin_routes(client: FlaskClient, saga_env: Settings) -> None:
    headers = bearer(saga_env, customer())
    problem(client.post("/products", headers=headers,
                        json={"sku": "EVIL-1", "name": "x", "price": "1.00"}), 403)
    problem(client.post("/products/MUG-001/restock", headers=headers,
                        json={"quantity": 1000}), 403)
