"""`saga load` against an API that is not there: a message naming the fix, not a traceback."""

from __future__ import annotations

import socket

import pytest

from common.settings import Settings
from tools.cli.main import main as saga


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens once the socket is closed


def test_load_without_an_api_names_the_fix(saga_env: Settings,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    assert saga(["load", "--orders", "1", "--api-url", url]) == 1
    out = capsys.readouterr().out
    assert f"saga load: lost the API at {url}" in out
    assert "./taskw up" in out
