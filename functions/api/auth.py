"""/auth: register a customer and exchange a username and password for a JWT.

Passwords are argon2id hashes (argon2-cffi's PasswordHasher, RFC 9106 parameters). A
failed sign-in costs the same whether or not the user exists (a dummy hash is verified),
and answers the same message. Five consecutive failures lock the account for 30 s (429),
counted in auth.users under the row lock so that parallel guesses cannot overtake the count.
Request bodies of these routes are never logged (the router logs no bodies at all).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, Field

from common.auth import CUSTOMER_ROLE, issue_token
from common.pg import Tx
from common.problems import Problem
from functions.api import sql
from functions.api.route_specs import Call, Reply, RouteGroup
from functions.api.schemas import RequestModel
from functions.api.security import unauthorized
from functions.api.tx import transact

ROUTES = RouteGroup("auth")

MAX_FAILURES = 5
LOCKOUT = timedelta(seconds=30)

Username = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
# An upper bound too: argon2 hashes any length, but a megabyte password is a cheap DoS.
Password = Annotated[str, Field(min_length=8, max_length=1024)]

_hasher = PasswordHasher()
# Each argon2 hash or verification holds memory_cost (64 MiB by default) until it returns.
# With THREADS=8 concurrent sign-ins the worker peaked at 612 MB RSS (measured during the
# bench's population phase), past the 512Mi limit in knative/api.yaml; two at a time bound
# that to 128 MiB, and a CPU limit of one core (same file) gains nothing from more.
_hashing = threading.BoundedSemaphore(2)


class RegisterIn(RequestModel):
    username: Username
    password: Password


class RegisteredOut(BaseModel):
    username: str


class TokenIn(RequestModel):
    # Any name an account may have (the bootstrap admin's is the operator's choice), but no
    # NUL: PostgreSQL text cannot hold one, and the lookup would fail with a 500.
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00]+$")
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth 2 token type)
    expires_in: int = Field(description="Seconds until the token expires.")


@dataclass(frozen=True)
class _SignIn:
    roles: list[str] | None = None  # set when the password was right
    retry_after_s: int | None = None  # set when the account is locked


@ROUTES.route(
    "POST", "/auth/register", summary="Register a customer account", auth="none",
    status=201, body=RegisterIn, response=RegisteredOut, errors=(409, 422),
)
def register(call: Call) -> Reply:
    body = call.body(RegisterIn)
    password_hash = hash_password(body.password)  # slow on purpose: outside the transaction

    def work(tx: Tx) -> bool:
        return create_user(tx, body.username, password_hash, [CUSTOMER_ROLE])

    if not transact(call, work):
        raise Problem(409, "conflict", "that username is taken")
    return Reply(RegisteredOut(username=body.username), 201)


@ROUTES.route(
    "POST", "/auth/token", summary="Sign in: get a bearer token", auth="none",
    body=TokenIn, response=TokenOut, errors=(401, 422, 429),
)
def token(call: Call) -> Reply:
    body = call.body(TokenIn)
    outcome = transact(call, lambda tx: _sign_in(tx, body))
    if outcome.retry_after_s is not None:
        raise Problem(
            429, "too many failed sign-ins",
            f"the account is locked; try again in {outcome.retry_after_s} s",
            headers={"Retry-After": str(outcome.retry_after_s)},
        )
    if outcome.roles is None:
        raise unauthorized("wrong username or password")
    settings = call.settings
    access_token = issue_token(settings, body.username, roles=outcome.roles)
    return Reply(TokenOut(access_token=access_token, expires_in=settings.jwt_ttl_s))


def _sign_in(tx: Tx, body: TokenIn) -> _SignIn:
    row = tx.one(sql.LOCK_USER, {"username": body.username})
    if row is None:
        verify_password(_dummy(), body.password)  # the same cost as a real user's wrong password
        return _SignIn()
    password_hash, roles, failed_logins, locked_until, now = row
    if locked_until is not None and locked_until > now:
        return _SignIn(retry_after_s=math.ceil((locked_until - now).total_seconds()))
    state = {"username": body.username, "failed_logins": 0, "locked_until": None,
             "password_hash": None}  # None: the hash stays
    if verify_password(password_hash, body.password):
        if _hasher.check_needs_rehash(password_hash):
            state["password_hash"] = hash_password(body.password)
        tx.run(sql.SET_SIGN_IN_STATE, state)
        return _SignIn(roles=list(roles))
    failures = failed_logins + 1
    if failures >= MAX_FAILURES:
        # The count starts again after the lock: five more tries per 30 s at most.
        state["locked_until"] = now + LOCKOUT
    else:
        state["failed_logins"], state["locked_until"] = failures, locked_until
    tx.run(sql.SET_SIGN_IN_STATE, state)
    return _SignIn()


def create_user(tx: Tx, username: str, password_hash: str, roles: list[str]) -> bool:
    """Add a user; False (and nothing changed) when the username is taken."""
    return tx.one(sql.CREATE_USER, {"username": username, "password_hash": password_hash,
                                    "roles": roles}) is not None


def hash_password(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        with _hashing:
            return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy() -> str:
    return hash_password("not a password anyone has")
