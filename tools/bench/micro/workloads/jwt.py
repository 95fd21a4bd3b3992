"""verify_token of a local HS256 token: the same one again, or one never seen before."""

from __future__ import annotations

from pydantic import SecretStr

from common.auth import issue_token, verify_token
from common.settings import Settings

WARMUP = 20


def _settings() -> Settings:
    return Settings(jwt_secret=SecretStr("x" * 48))


def repeated_token(n: int, total: int) -> None:
    settings = _settings()
    token = issue_token(settings, "alice")
    for _ in range(WARMUP):
        assert verify_token(settings, token).subject == "alice"
    for _ in range(n):
        verify_token(settings, token)


def new_tokens(n: int, total: int) -> None:
    settings = _settings()
    # Issued for `total` in every run, so that issuing cancels out of the difference.
    tokens = [issue_token(settings, f"user{i}") for i in range(WARMUP + total)]
    for i, token in enumerate(tokens[:WARMUP]):
        assert verify_token(settings, token).subject == f"user{i}"
    for token in tokens[WARMUP:WARMUP + n]:
        verify_token(settings, token)
