"""verify_token reads only the header to choose the key (common/auth.py); jwt.decode still
checks the whole token, so a broken payload or signature is refused all the same."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import SecretStr

from common.auth import AuthError, issue_token, verify_token
from common.settings import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings(jwt_secret=SecretStr("header-test-" + "x" * 40))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_good_token_passes(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert verify_token(settings, issue_token(settings, "alice")).subject == "alice"


@pytest.mark.parametrize("token", ["", "abc", "!!.x.y", _b64(b"[1]") + ".x.y",
                                   _b64(b"\xff") + ".x.y", "é.x.y"])
def test_an_unreadable_header_is_malformed(tmp_path: Path, token: str) -> None:
    with pytest.raises(AuthError, match="malformed token"):
        verify_token(_settings(tmp_path), token)


def test_a_broken_payload_is_malformed(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    header, _, signature = issue_token(settings, "alice").split(".")
    with pytest.raises(AuthError, match="malformed token"):
        verify_token(settings, f"{header}.!!!.{signature}")


def test_a_changed_payload_fails_the_signature(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    header, _, signature = issue_token(settings, "alice").split(".")
    other = issue_token(settings, "mallory").split(".")[1]
    with pytest.raises(AuthError, match="invalid token"):
        verify_token(settings, f"{header}.{other}.{signature}")


def test_an_algorithm_we_do_not_accept(tmp_path: Path) -> None:
    token = _b64(b'{"alg":"none","typ":"JWT"}') + "." + _b64(b'{"sub":"a"}') + "."
    with pytest.raises(AuthError, match="not accepted"):
        verify_token(_settings(tmp_path), token)
