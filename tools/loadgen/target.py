"""Which running system a tool talks to: DATABASE_URL / --api-url when given, else what the
`./taskw up` in SAGA_STATE_DIR wrote to runtime-state.json."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, issue_token
from common.settings import Settings
from common.settings_errors import env_name
from tools.infra.reach import check_database, runtime_origin, setting_origin
from tools.runtime.state import read_state, state_path
from tools.settings import LocalSettings, with_jwt_secret


class NoTarget(RuntimeError):
    """Nothing to talk to: no running stack and nothing configured."""


@dataclass(frozen=True)
class Target:
    api_url: str
    database_url: str
    settings: Settings  # for tokens: the stack's JWT secret, issuer and audience
    state_dir: Path

    def admin_token(self) -> str:
        return issue_token(self.settings, "loadgen-admin", roles=[CUSTOMER_ROLE, ADMIN_ROLE])

    def state(self) -> dict[str, Any]:
        return read_state(self.state_dir) or {}


def state_dir_of(settings: LocalSettings, root: Path) -> Path:
    state_dir = Path(settings.state_dir)
    return state_dir if state_dir.is_absolute() else root / state_dir


def database_url(settings: Settings, state_dir: Path) -> str:
    """The database's URL, once it let us in (else Unreachable: tools/infra/reach.py)."""
    variable = env_name(type(settings), "database_url")
    if settings.database_url is not None:
        given = settings.database_url.get_secret_value()
        check_database(given, *setting_origin(variable))
        return given
    state = read_state(state_dir) or {}
    url = state.get("database_url")
    if not url or "***" in url:  # masked: the password is only in the environment
        raise NoTarget("set DATABASE_URL (no running `./taskw up` with a usable database "
                       f"URL in {state_dir})")
    check_database(str(url), *runtime_origin(state_path(state_dir), state.get("pid"), variable))
    return str(url)


def resolve(settings: LocalSettings, root: Path, api_url: str | None = None) -> Target:
    state_dir = state_dir_of(settings, root)
    state = read_state(state_dir) or {}
    url = api_url or state.get("api_url")
    if not url or (api_url is None and state.get("phase") != "running"):
        raise NoTarget(f"no running `./taskw up` in {state_dir} (start one, or pass --api-url)")
    return Target(str(url), database_url(settings, state_dir), with_jwt_secret(settings),
                  state_dir)
