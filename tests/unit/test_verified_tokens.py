"""A token that verified is remembered (common/verified_tokens.py, common/auth.py): until
its exp, at most BOUND_S, at most SIZE of them, and only under the settings and the keys it
verified with; a token that failed is never remembered."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from common import auth
from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, AuthError, issue_token, verify_token
from common.settings import Settings
from common.verified_tokens import BOUND_S, VerifiedTokens

SECRET = "s" * 32


def _settings(secret: str = SECRET) -> Settings:
    return Settings(jwt_secret=SecretStr(secret))


class Decodes:
    """How many times PyJWT checked a signature."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Decodes]:
    seen = Decodes()
    decode = jwt.decode

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.count += 1
        return decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)
    auth._VERIFIED.clear()
    yield seen
    auth._VERIFIED.clear()


def test_a_verified_token_is_checked_once(decodes: Decodes) -> None:
    settings = _settings()
    token = issue_token(settings, "alice")
    assert verify_token(settings, token) == verify_token(settings, token)
    assert verify_token(settings, token).subject == "alice"
    assert decodes.count == 1


def test_another_token_of_the_same_subject_is_its_own(decodes: Decodes) -> None:
    settings = _settings()
    customer = issue_token(settings, "alice")
    admin = issue_token(settings, "alice", roles=[CUSTOMER_ROLE, ADMIN_ROLE])
    assert not verify_token(settings, customer).is_admin
    assert verify_token(settings, admin).is_admin
    assert not verify_token(settings, customer).is_admin
    assert decodes.count == 2


def test_a_token_that_fails_is_never_remembered(decodes: Decodes) -> None:
    settings = _settings()
    forged = issue_token(_settings("f" * 32), "alice")
    for _ in range(2):
        with pytest.raises(AuthError, match="invalid token"):
            verify_token(settings, forged)
    assert decodes.count == 2 and len(auth._VERIFIED) == 0


def test_a_new_secret_ends_the_verdicts_of_the_old(decodes: Decodes) -> None:
    old, new = _settings(), _settings("n" * 32)
    token = issue_token(old, "alice")
    verify_token(old, token)
    with pytest.raises(AuthError, match="invalid token"):
        verify_token(new, token)
    other_audience = old.model_copy(update={"jwt_audience": "another-api"})
    with pytest.raises(AuthError, match="audience"):
        verify_token(other_audience, token)
    assert decodes.count == 3


def test_a_verdict_ends_at_the_tokens_exp(decodes: Decodes,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings()
    token = issue_token(settings, "alice", ttl_s=60)
    exp = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})[
        "payload"]["exp"]
    verify_token(settings, token)
    monkeypatch.setattr(time, "time", lambda: exp - 0.5)
    verify_token(settings, token)
    assert decodes.count == 1
    monkeypatch.setattr(time, "time", lambda: exp)
    verify_token(settings, token)  # PyJWT's own clock (and leeway) still accepts it
    assert decodes.count == 2


def test_a_verdict_ends_after_the_bound(decodes: Decodes,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings()
    token = issue_token(settings, "alice", ttl_s=3600)
    verify_token(settings, token)
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + BOUND_S - 1)
    verify_token(settings, token)
    assert decodes.count == 1
    monkeypatch.setattr(time, "monotonic", lambda: now + BOUND_S + 1)
    verify_token(settings, token)
    assert decodes.count == 2


def test_the_least_recently_used_leave_first() -> None:
    tokens: VerifiedTokens[str] = VerifiedTokens(size=2)
    forever = time.time() + 3600
    tokens.put("a", (), "A", forever)
    tokens.put("b", (), "B", forever)
    assert tokens.get("a", ()) == "A"  # now b is the least recently used
    tokens.put("c", (), "C", forever)
    assert (tokens.get("a", ()), tokens.get("b", ()), tokens.get("c", ())) == ("A", None, "C")
    assert len(tokens) == 2
    assert tokens.get("a", ("other keys",)) is None and len(tokens) == 1


def test_threads_share_one_verdict(decodes: Decodes) -> None:
    settings = _settings()
    token = issue_token(settings, "alice")
    verify_token(settings, token)
    seen: list[str] = []

    def verify() -> None:
        for _ in range(200):
            seen.append(verify_token(settings, token).subject)

    threads = [threading.Thread(target=verify) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == ["alice"] * 1600 and decodes.count == 1
