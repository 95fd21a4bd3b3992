"""Helpers for the console function's tests (no tests here): its test client, an admin's
and a customer's headers, and the audit rows an operation wrote."""

from __future__ import annotations

from functools import cache
from typing import Any

from flask.testing import FlaskClient
from functions_framework import create_app
from sqlalchemy import select

from common import tables as t
from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, issue_token
from common.db import get_engine
from common.settings import Settings
from tools import REPO_ROOT

MAIN = REPO_ROOT / "functions" / "console" / "main.py"
OPERATOR = "op-ada"


@cache
def console_client() -> FlaskClient:
    """One client for every test: settings and engines are read per request."""
    app = create_app(target="console", source=str(MAIN), signature_type="http")  # type: ignore[no-untyped-call]
    client: FlaskClient = app.test_client()
    return client


def admin(settings: Settings, subject: str = OPERATOR) -> dict[str, str]:
    token = issue_token(settings, subject, roles=[CUSTOMER_ROLE, ADMIN_ROLE])
    return {"Authorization": f"Bearer {token}"}


def customer(settings: Settings, subject: str = "cust-console") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, subject)}"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def audit_row(settings: Settings, audit_id: int) -> Any:
    with get_engine(settings).connect() as conn:
        return conn.execute(select(t.audit).where(t.audit.c.id == audit_id)).one()
