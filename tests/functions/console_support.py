"""Helpers for the console function's tests (no tests here): its test client, an admin's
and a customer's headers, and the audit rows an operation wrote."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from common import tables as t
from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, issue_token
from common.settings import Settings, get_settings
from tests.helpers import engine_of, function_client
from tools import REPO_ROOT

MAIN = REPO_ROOT / "functions" / "console" / "main.py"
OPERATOR = "op-ada"

_clients: dict[Settings, FlaskClient] = {}


def console_client() -> FlaskClient:
    """A console process on the settings in the environment now: one per settings, as its
    main.py reads them once (its resources are closed after each test by saga_env, and
    opened anew when it is used again)."""
    settings = get_settings()
    if settings not in _clients:
        _clients[settings] = function_client("console", str(MAIN), "http", asgi=False)
    return _clients[settings]


def admin(settings: Settings, subject: str = OPERATOR) -> dict[str, str]:
    token = issue_token(settings, subject, roles=[CUSTOMER_ROLE, ADMIN_ROLE])
    return {"Authorization": f"Bearer {token}"}


def customer(settings: Settings, subject: str = "cust-console") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, subject)}"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def audit_row(settings: Settings, audit_id: int) -> Any:
    with engine_of(settings).connect() as conn:
        return conn.execute(select(t.audit).where(t.audit.c.id == audit_id)).one()
