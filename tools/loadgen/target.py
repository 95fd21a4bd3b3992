"""Which running system a tool talks to: --api-url and DATABASE_URL when given, else what
the `./taskw up` running in SAGA_STATE_DIR wrote to runtime-state.json (read, and its pid
checked, by tools/ops/context.py). Nothing to talk to raises Unreachable: one line on
stderr naming the fix, exit 1, as every operator command says it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, issue_token
from common.settings import Settings
from tools.infra.reach import Unreachable
from tools.ops.context import OpsContext
from tools.ops.context import resolve as resolve_context
from tools.runtime.state import read_state
from tools.settings import LocalSettings, with_jwt_secret


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


def database_url(ctx: OpsContext) -> str:
    """The database's URL, once it let us in (else Unreachable: tools/infra/reach.py)."""
    url = ctx.require_database().database_url
    assert url is not None  # require_database raises without one
    return url.get_secret_value()


def resolve(settings: LocalSettings, root: Path, api_url: str | None = None) -> Target:
    ctx = resolve_context(settings, root)
    if api_url is None:
        runtime = ctx.runtime
        if runtime is None:
            raise Unreachable(f"no stack is running in {ctx.state_dir}; start one with "
                              "./taskw up, or give the API with --api-url URL")
        if runtime.get("phase") != "running" or not runtime.get("api_url"):
            raise Unreachable(f"the stack in {ctx.state_dir} is still starting (phase "
                              f"{runtime.get('phase')}): wait until ./taskw up reports it "
                              "is running")
        api_url = str(runtime["api_url"])
    signing = with_jwt_secret(settings.model_copy(update={"state_dir": ctx.state_dir}))
    return Target(api_url, database_url(ctx), signing, ctx.state_dir)
