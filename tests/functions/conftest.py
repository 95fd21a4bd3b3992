"""Fixtures of the functions' tests: `client`, the api function's test client on the
database and broker `saga_env` points at (tests/conftest.py)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from common.settings import Settings
from tests.functions.api_support import api_client


@pytest.fixture
def client(saga_env: Settings) -> FlaskClient:
    return api_client()
