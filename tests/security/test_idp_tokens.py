"""Tokens from an identity provider, through the api: RS256 with real keys served as a JWKS
over HTTP (SAGA_JWKS_URL), roles read where the provider puts them (SAGA_JWKS_ROLES_CLAIM)
and only the configured value (SAGA_JWKS_ADMIN_ROLE) making an admin. Issuer, audience and
signature are checked as for our own tokens."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient

from common.settings import Settings
from tests.functions.api_support import api_client, problem

pytestmark = pytest.mark.integration

ISSUER = "https://idp.test/realms/shop"
AUDIENCE = "saga-api"
KID = "idp-key-1"


@dataclass(frozen=True)
class IdentityProvider:
    """An identity provider's signing key, its JWKS served on loopback."""

    key: rsa.RSAPrivateKey
    jwks_url: str

    def token(self, roles_claim: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None,
              kid: str = KID, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"sub": f"idp-{uuid.uuid4().hex[:8]}", "iss": ISSUER, "aud": AUDIENCE,
                  "iat": now, "nbf": now, "exp": now + 300, **roles_claim, **overrides}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})


class _Jwks(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    handler = type("Jwks", (_Jwks,), {"body": json.dumps(
        {"keys": [jwk | {"kid": KID, "use": "sig", "alg": "RS256"}]}).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # the kernel picks the port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield IdentityProvider(key, f"http://127.0.0.1:{server.server_port}/certs")
    finally:
        server.shutdown()
        server.server_close()


def _configure(monkeypatch: pytest.MonkeyPatch, idp: IdentityProvider, claim: str,
               admin: str) -> FlaskClient:
    """The api, started with these settings (a process reads them as it starts)."""
    monkeypatch.setenv("SAGA_JWKS_URL", idp.jwks_url)
    monkeypatch.setenv("SAGA_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("SAGA_JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("SAGA_JWKS_ROLES_CLAIM", claim)
    monkeypatch.setenv("SAGA_JWKS_ADMIN_ROLE", admin)
    return api_client()


# How three providers say "admin", and the setting that reads it.
PROVIDERS: dict[str, tuple[str, str, Callable[[list[str]], dict[str, Any]]]] = {
    "keycloak": ("realm_access.roles", "shop-admin",
                 lambda roles: {"realm_access": {"roles": ["offline_access", *roles]}}),
    "auth0": ("https://shop.example/roles", "admin",
              lambda roles: {"https://shop.example/roles": roles}),
    "okta": ("groups", "Shop Admins", lambda roles: {"groups": ["Everyone", *roles]}),
}


def _create_product(client: FlaskClient, token: str) -> Any:
    sku = f"IDP-{uuid.uuid4().hex[:8]}"
    return client.post("/products", headers={"Authorization": f"Bearer {token}"},
                       json={"sku": sku, "name": "from the IdP", "price": "3.00",
                             "initial_stock": 5})


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_the_providers_admin_creates_a_product_and_its_customer_may_not(
    saga_env: Settings, idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch, provider: str,
) -> None:
    claim, admin, shape = PROVIDERS[provider]
    client = _configure(monkeypatch, idp, claim, admin)

    created = _create_product(client, idp.token(shape([admin])))
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["available"] == 5

    customer = idp.token(shape([]))
    problem(_create_product(client, customer), 403)
    mine = client.get("/orders", headers={"Authorization": f"Bearer {customer}"})
    assert mine.status_code == 200 and mine.get_json()["items"] == []


def test_a_top_level_roles_claim_is_not_the_providers_word(
    saga_env: Settings, idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the roles read from realm_access.roles, `roles: [admin]` elsewhere in the token
    (a claim a user may be able to set in their profile) grants nothing."""
    client = _configure(monkeypatch, idp, "realm_access.roles", "shop-admin")
    token = idp.token({"roles": ["admin"], "realm_access": {"roles": ["admin"]}})
    problem(_create_product(client, token), 403)


@pytest.mark.parametrize(("overrides", "detail"), [
    ({"iss": "https://evil.example/realms/shop"}, "issuer"),
    ({"aud": "another-api"}, "audience"),
    ({"exp": int(time.time()) - 60}, "expired"),
])
def test_an_admin_token_for_someone_else_is_refused(
    saga_env: Settings, idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, Any], detail: str,
) -> None:
    client = _configure(monkeypatch, idp, "realm_access.roles", "shop-admin")
    token = idp.token({"realm_access": {"roles": ["shop-admin"]}}, **overrides)
    assert detail in problem(_create_product(client, token), 401)["detail"]


def test_a_token_signed_by_another_key_is_refused(
    saga_env: Settings, idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = _configure(monkeypatch, idp, "realm_access.roles", "shop-admin")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    roles = {"realm_access": {"roles": ["shop-admin"]}}
    # The provider's key id with another key: the signature does not verify.
    problem(_create_product(client, idp.token(roles, key=stranger)), 401)
    # A key id the JWKS does not hold.
    body = problem(_create_product(client, idp.token(roles, key=stranger, kid="other")), 401)
    assert body["detail"] == "signing key not found"


def test_a_misconfigured_claim_is_a_clear_401(
    saga_env: Settings, idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The setting names an object, not a list: refused, naming the claim, never guessed."""
    client = _configure(monkeypatch, idp, "realm_access", "shop-admin")
    token = idp.token({"realm_access": {"roles": ["shop-admin"]}})
    body = problem(_create_product(client, token), 401)
    assert "'realm_access' is not a list of roles" in body["detail"]


class _RotatingJwks(BaseHTTPRequestHandler):
    keys: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        body = json.dumps({"keys": self.keys}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Clock:
    """time.monotonic moved on by `ahead` seconds, for the JWKS cache and our verdicts."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return dict(public) | {"kid": kid, "use": "sig", "alg": "RS256"}


def test_a_key_rotation_ends_the_verdicts_made_under_the_old_keys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A verified token is remembered (common/verified_tokens.py) only while the key set
    that verified it is the one the JWKS client holds: a new set, fetched for a new kid or
    when the old one's lifespan ends, sends every token through the check again, and a
    token whose key was withdrawn is refused at once."""
    from common import auth, verified_tokens

    clock = _Clock()
    for module in (jwt.jwk_set_cache, jwt.jwks_client, verified_tokens):
        monkeypatch.setattr(module, "time", clock)
    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
                for _ in range(2))
    handler: type[_RotatingJwks] = type("Jwks", (_RotatingJwks,), {"keys": [_jwk(old, "old")]})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # the kernel picks the port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        idp = IdentityProvider(old, f"http://127.0.0.1:{server.server_port}/certs")
        settings = Settings(jwks_url=idp.jwks_url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
        before = idp.token({}, kid="old")
        assert auth.verify_token(settings, before).subject.startswith("idp-")
        assert auth.verify_token(settings, before)  # remembered

        # The provider withdraws the old key. Within the JWKS cooldown nothing is fetched.
        handler.keys = [_jwk(new, "new")]
        clock.ahead = 31.0
        # A token with the new kid makes the client fetch the new set...
        assert auth.verify_token(settings, idp.token({}, key=new, kid="new"))
        # ...and the old token is checked again under it: its key is gone.
        with pytest.raises(auth.AuthError, match="signing key not found"):
            auth.verify_token(settings, before)

        # Without a new kid, the set's lifespan ends the verdicts just as well.
        handler.keys = [_jwk(old, "old")]
        clock.ahead = 31.0 + verified_tokens.BOUND_S + 1
        again = idp.token({}, kid="old")
        assert auth.verify_token(settings, again)  # the old key is back
        handler.keys = [_jwk(new, "new")]
        clock.ahead += verified_tokens.BOUND_S + 1
        with pytest.raises(auth.AuthError, match="signing key not found"):
            auth.verify_token(settings, again)
    finally:
        server.shutdown()
        server.server_close()
        auth._VERIFIED.clear()
