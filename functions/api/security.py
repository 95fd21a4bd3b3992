"""The auth dependency: a Bearer JWT checked by common.auth.verify_token (signature, expiry,
audience, issuer, accepted algorithms). Failures are 401 with an RFC 6750 challenge; the
token itself is never logged or echoed."""

from __future__ import annotations

from werkzeug import Request

from common.auth import AuthError, Principal, verify_token
from common.problems import Problem
from common.settings import Settings

REALM = "saga-api"


def challenge(error: str | None = None, description: str | None = None) -> str:
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        # A quoted-string: the description may quote a client-chosen value (the alg).
        safe = description.replace("\\", "").replace('"', "'")
        parts.append(f'error_description="{safe}"')
    return "Bearer " + ", ".join(parts)


def unauthorized(detail: str, error: str | None = None) -> Problem:
    return Problem(
        401, "unauthorized", detail,
        headers={"WWW-Authenticate": challenge(error, detail if error else None)},
    )


def authenticate(request: Request, settings: Settings) -> Principal:
    header = request.headers.get("Authorization", "")
    if not header:
        # RFC 6750 3.1: no error code when the request carried no credentials at all.
        raise unauthorized("send Authorization: Bearer <token> (POST /auth/token)")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("the Authorization header must be 'Bearer <token>'",
                           "invalid_request")
    try:
        return verify_token(settings, token)
    except AuthError as exc:
        raise unauthorized(str(exc), "invalid_token") from None


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Problem(403, "forbidden", "this operation needs the admin role",
                         headers={"WWW-Authenticate": challenge("insufficient_scope")})

