"""Fixtures shared by the integration tests.

`fresh_database` and `pg_server_url` come from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common.migrate import upgrade


@pytest.fixture(scope="session")
def migrated_database(fresh_database: Callable[[str], str]) -> str:
    """postgresql:// URL of a database of this session, migrated to head.

    Shared by every integration test of the session, so tests must not change its schema
    and should leave no data another test could trip over (roll back, or use unique keys).
    tests/conftest.py drops it at session end.
    """
    url = fresh_database("app")
    upgrade(url)
    return url
