"""JWT issuing (SAGA_JWT_SECRET) and verification (always: signature, expiry, audience,
issuer). HS256 uses our secret; RS256 is accepted only with keys from the configured JWKS
URL (a production identity provider), so an HS256 token can never be checked against a
public RSA key (algorithm confusion). Our own tokens carry our roles in `roles`; an
identity provider's token is a customer, and an admin when the claim SAGA_JWKS_ROLES_CLAIM
names holds SAGA_JWKS_ADMIN_ROLE (docs/deploy.md, "An identity provider"). A token that
verified is remembered until its exp, under the same keys (common/verified_tokens.py)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import jwt

from common.settings import Settings
from common.verified_tokens import BOUND_S, VerifiedTokens

ADMIN_ROLE = "admin"
CUSTOMER_ROLE = "customer"
_LEEWAY_S = 5
_JWKS_LIFESPAN_S = BOUND_S


class AuthError(Exception):
    """The token is missing, malformed, expired, or not for us. The message is safe to show."""


class ConfigError(RuntimeError):
    pass


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


def jwt_secret(settings: Settings) -> str:
    """The HS256 secret, SAGA_JWT_SECRET (never a built-in value; the local runtime makes
    one for its processes: tools/settings.py local_jwt_secret)."""
    if settings.jwt_secret is None:
        raise ConfigError("set SAGA_JWT_SECRET (or SAGA_JWKS_URL)")
    return settings.jwt_secret.get_secret_value()


def issue_token(
    settings: Settings, subject: str, *, roles: list[str] | None = None, ttl_s: int | None = None
) -> str:
    now = int(time.time())
    claims = {
        "sub": subject,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + (ttl_s or settings.jwt_ttl_s),
        "roles": roles or [CUSTOMER_ROLE],
    }
    return jwt.encode(claims, jwt_secret(settings), algorithm="HS256")


# Tokens that verified, until their exp and for at most as long as the provider's key set
# is trusted without asking again (common/verified_tokens.py).
_VERIFIED: VerifiedTokens[Principal] = VerifiedTokens(bound_s=_JWKS_LIFESPAN_S)


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    # The key set is fetched again after the lifespan; no per-kid cache (cache_keys), whose
    # entries never expire: a key the provider withdrew would be trusted for good.
    return jwt.PyJWKClient(url, cache_keys=False, lifespan=_JWKS_LIFESPAN_S)


def _header(token: str) -> dict[str, object]:
    """The header, to choose the key. Only the header is read (PyJWT's
    get_unverified_header parses all three segments: docs/benchmarks.md); jwt.decode parses
    and checks the whole token again, header included, against its one algorithm."""
    segment, dot, _ = token.partition(".")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:  # not base64, not UTF-8, not JSON
        raise AuthError("malformed token") from None
    if not dot or not isinstance(header, dict):
        raise AuthError("malformed token")
    return header


def _trust(settings: Settings) -> tuple[object, ...]:
    """What a verdict depends on besides the token: the claims we require and how roles
    are read, and the keys: our secret, the provider's key set as the JWKS client holds it
    now (None once its lifespan ended: the next verification fetches it again)."""
    keys = None
    if settings.jwks_url:
        cache = _jwks_client(settings.jwks_url).jwk_set_cache
        keys = cache.get() if cache is not None else None
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret is not None else None
    return (settings.jwt_audience, settings.jwt_issuer, settings.jwks_roles_claim,
            settings.jwks_admin_role, settings.jwks_url, secret, keys)


def verify_token(settings: Settings, token: str) -> Principal:
    """The token's principal: from its verdict if it verified already under the same
    settings and keys, else verified now (and remembered if it passes)."""
    known = _VERIFIED.get(token, _trust(settings))
    if known is not None:
        return known
    header = _header(token)
    principal, expires_at = _verify(settings, token, header.get("alg"))
    trust = _trust(settings)
    # A provider's token is remembered only under a key set that still holds its key (a
    # set fetched by another request meanwhile may have withdrawn it).
    if header.get("alg") != "RS256" or _holds(trust[-1], header.get("kid")):
        _VERIFIED.put(token, trust, principal, expires_at)
    return principal


def _holds(keys: object, kid: object) -> bool:
    return isinstance(keys, jwt.PyJWKSet) and any(key.key_id == kid for key in keys.keys)


def _verify(settings: Settings, token: str, algorithm: object) -> tuple[Principal, float]:
    """The principal and the token's exp, after every check."""
    key: object
    if algorithm == "HS256" and settings.jwt_secret is not None:
        key = jwt_secret(settings)
    elif algorithm == "RS256" and settings.jwks_url:
        try:
            key = _jwks_client(settings.jwks_url).get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientError:
            raise AuthError("signing key not found") from None
    else:
        raise AuthError(f"algorithm {algorithm!r} is not accepted")
    try:
        claims = jwt.decode(
            token,
            key,  # type: ignore[arg-type]
            algorithms=[algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=_LEEWAY_S,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.ImmatureSignatureError:
        raise AuthError("token not yet valid") from None
    except jwt.InvalidAudienceError:
        raise AuthError("token audience is not this API") from None
    except jwt.InvalidIssuerError:
        raise AuthError("token issuer is not trusted") from None
    except jwt.InvalidSignatureError:
        raise AuthError("invalid token") from None
    except jwt.DecodeError:  # a segment that is not base64url or not JSON
        raise AuthError("malformed token") from None
    except jwt.InvalidTokenError:
        raise AuthError("invalid token") from None
    return _principal(settings, algorithm, claims), float(claims["exp"])


def _principal(settings: Settings, algorithm: object, claims: Mapping[str, object]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthError("invalid token claims")
    if algorithm == "RS256":
        return Principal(subject, identity_provider_roles(
            claims, settings.jwks_roles_claim, settings.jwks_admin_role))
    roles = claims.get("roles", [CUSTOMER_ROLE])
    if not isinstance(roles, list):
        raise AuthError("invalid token claims")
    return Principal(subject, frozenset(str(r) for r in roles))


def identity_provider_roles(claims: Mapping[str, object], path: str,
                            admin_value: str) -> frozenset[str]:
    """Our roles for an identity provider's token: customer, plus admin when the claim at
    `path` holds `admin_value`. The provider's other roles mean nothing here."""
    if admin_value in claim_values(claims, path):
        return frozenset({CUSTOMER_ROLE, ADMIN_ROLE})
    return frozenset({CUSTOMER_ROLE})


def claim_values(claims: Mapping[str, object], path: str) -> list[str]:
    """The strings of the claim at `path`: a top-level claim of exactly that name, else the
    dotted path through nested objects. A list of strings, or one string of space-separated
    values (as OAuth's `scope`); absent is no values; any other shape is refused, since it
    means the setting points at the wrong claim."""
    node: object = claims
    if path in claims:
        node = claims[path]
    else:
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return []
            node = node[part]
    if isinstance(node, str):
        return node.split()
    if isinstance(node, list) and all(isinstance(value, str) for value in node):
        return list(node)
    raise AuthError(f"token claim {path!r} is not a list of roles")
