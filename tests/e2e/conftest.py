"""`local_stack`: the whole system as `./taskw up` runs it (a `saga up` process started from
the real manifests), for end-to-end tests. One per session.

It uses the session's PostgreSQL server (a fresh database) and, unless
KAFKA_BOOTSTRAP_SERVERS is set, lets the runtime start its own broker (the session's kind:
SAGA_BROKER, set from pytest's --broker), so the stack's KafkaSources see only the stack's
events. Stopped with SIGINT (Ctrl-C) at the end,
and the test fails if it leaves a process behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, issue_token
from tests.conftest import TEST_JWT_SECRET
from tests.e2e.browser_support import chromium
from tests.helpers import wait_for
from tools import REPO_ROOT
from tools.apiclient import ApiClient
from tools.infra.ports import free_port, stop_process
from tools.ops.context import runtime_broker_kind
from tools.runtime.state import read_state
from tools.settings import LocalSettings


@dataclass
class LocalStack:
    api_url: str
    console_url: str  # the operators' console page (/console)
    state_dir: Path
    logs_dir: Path
    settings: LocalSettings  # the stack's database and broker, for assertions
    process: subprocess.Popen[bytes]
    output: Path

    def token(self, customer: str, *, admin: bool = False) -> str:
        roles = [CUSTOMER_ROLE, ADMIN_ROLE] if admin else [CUSTOMER_ROLE]
        return issue_token(self.settings, customer, roles=roles)

    def client(self, customer: str | None = None, *, admin: bool = False) -> ApiClient:
        token = self.token(customer, admin=admin) if customer else None
        return ApiClient(self.api_url, token)

    def state(self) -> dict[str, Any]:
        return read_state(self.state_dir) or {}

    def output_tail(self, lines: int = 40) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def running_stack(
    argv: list[str], env: dict[str, str], state_dir: Path, api_url: str, *,
    ctrl_c_group: bool = False,
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Run a stack command (`saga up`, or `./taskw up` as a person types it) from the
    repository until its API answers /healthz and runtime-state.json says running; yield the
    process and its console log. At the end: Ctrl-C (SIGINT to the process, or to its whole
    process group as a terminal sends it when `ctrl_c_group`), and fail if it does not stop
    within 60 s, exits non-zero or leaves a process behind."""
    output = state_dir / "saga-up.log"
    with output.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def started() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{argv} exited with {process.returncode}:\n"
                                 + output.read_text(errors="replace")[-4000:])
        return _healthy(api_url)

    try:
        wait_for(started, timeout=90, interval=0.2, message=f"{argv} to answer /healthz")
        # The API answers before every source has joined its group: wait for the whole stack.
        wait_for(lambda: (read_state(state_dir) or {}).get("phase") == "running", timeout=60,
                 interval=0.2, message="runtime-state to say running")
        children = psutil.Process(process.pid).children(recursive=True)
    except BaseException:
        stop_process(process.pid, [(signal.SIGINT, 30.0)], what=str(argv))
        raise
    try:
        yield process, output
    finally:
        if ctrl_c_group:
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        try:
            code = process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(f"{argv} did not stop within 60 s of Ctrl-C") from None
        leftovers = [c for c in children if c.is_running() and c.status() != "zombie"]
        assert not leftovers, f"processes left after Ctrl-C: {leftovers}"
        tail = "\n".join(output.read_text(errors="replace").splitlines()[-40:])
        assert code == 0, f"{argv} exited with {code}:\n{tail}"
        # Keep the console output of the stack next to the test report for post-mortems.
        print(json.dumps({"saga_up_output": str(output)}))


@pytest.fixture(scope="session")
def local_stack(
    fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    database_url = fresh_database("e2e")
    state_dir = tmp_path_factory.mktemp("stack")
    port, console_port = free_port(), free_port()
    env = dict(os.environ) | {
        "DATABASE_URL": database_url,
        "SAGA_STATE_DIR": str(state_dir),
        "SAGA_API_PORT": str(port),
        "SAGA_CONSOLE_PORT": str(console_port),
        "SAGA_JWT_SECRET": TEST_JWT_SECRET,
        "SAGA_PROFILE": "local",
    }
    api_url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "tools.cli.main", "up"]
    with running_stack(argv, env, state_dir, api_url) as (process, output):
        state = read_state(state_dir) or {}
        settings = LocalSettings(
            DATABASE_URL=database_url,
            KAFKA_BOOTSTRAP_SERVERS=state.get("kafka_bootstrap"),
            jwt_secret=TEST_JWT_SECRET,
            state_dir=state_dir,
            kafka_broker_kind=runtime_broker_kind(state),
        )
        yield LocalStack(api_url, str(state["console_url"]), state_dir, state_dir / "logs",
                         settings, process, output)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium for the tests of one module (tests/e2e/browser_support.py)."""
    yield from chromium(tmp_path_factory.mktemp("chromium-profile"))
