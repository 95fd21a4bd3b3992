"""Every way the stack is stopped, on the session's broker: SIGTERM or SIGINT to `./taskw
up`'s pid (`kill $!`, CI, systemd) or its process group (a terminal's Ctrl-C), SIGTERM to
`saga up`'s pid, a second signal forcing, `./taskw up -- --detach` then `./taskw down`.
Each collects every process of its stack first (descendants and session members: Task,
the runtime, zygotes, functions, PostgreSQL, the broker), then asserts all are gone within
STOP_DEADLINE_S and runtime-state.json says stopped. The stacks share one state dir in
turn (initdb and Kafka's format once). Process titles: on the session's shared stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import TEST_JWT_SECRET, session_broker_kind
from tests.e2e.conftest import LocalStack
from tests.helpers import wait_for
from tools import REPO_ROOT
from tools.infra.ports import free_port
from tools.manifests.loader import load_project_manifests
from tools.runtime.state import STATE_FILE, read_state

pytestmark = pytest.mark.e2e

STOP_DEADLINE_S = 10.0
START_TIMEOUT_S = 120.0
TASKW_UP = ["./taskw", "up"]
SAGA = [sys.executable, "-m", "tools.cli.main"]
BROKER_NAMES = ("tansu", "java")


@pytest.fixture(scope="module")
def state_dir() -> Iterator[Path]:
    """One state dir for this module's stacks, world-traversable: as root, the embedded
    PostgreSQL runs as an unprivileged account that must reach its data dir."""
    path = Path(tempfile.mkdtemp(prefix="saga-stopping-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def env(state_dir: Path) -> dict[str, str]:
    """The stack's environment: its own embedded PostgreSQL and broker (the session's kind,
    SAGA_BROKER), a free API port."""
    (state_dir / STATE_FILE).unlink(missing_ok=True)  # the previous stack's, stopped
    given = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "SAGA_KAFKA_BROKER_KIND")
    return {k: v for k, v in os.environ.items() if k not in given} | {
        "SAGA_STATE_DIR": str(state_dir), "SAGA_API_PORT": str(free_port()),
        "SAGA_JWT_SECRET": TEST_JWT_SECRET, "SAGA_PROFILE": "local"}


@dataclass
class Stack:
    process: subprocess.Popen[bytes]  # what was started: ./taskw up, or saga up
    state_dir: Path
    output: Path

    def running(self) -> dict[str, object] | None:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.process.args!r} exited with {self.process.returncode}:"
                                 f"\n{self.tail()}")
        state = read_state(self.state_dir) or {}
        return state if state.get("phase") == "running" else None

    def tail(self, lines: int = 60) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def started(command: list[str], env: dict[str, str], state_dir: Path, *,
            through_task: bool) -> Iterator[tuple[Stack, list[psutil.Process]]]:
    """The stack `command` starts, once it runs whole, and every process of it, collected
    before the test stops it. Whatever happens in the block, none of them outlives it."""
    output = state_dir / f"console-{time.monotonic_ns()}.log"
    with output.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    stack = Stack(process, state_dir, output)
    processes: list[psutil.Process] = []
    try:
        wait_for(stack.running, timeout=START_TIMEOUT_S, interval=0.2,
                 message=f"{' '.join(command)} to be running")

        processes = wait_for(lambda: whole_stack(process.pid, through_task=through_task),
                             timeout=60, interval=0.2, message="the runtime, PostgreSQL, "
                             "the broker and the functions")
        yield stack, processes
    finally:
        leftovers = [*processes, *every_process(process.pid)] if process.poll() is None \
            else processes
        for leftover in leftovers:  # a test that failed half-way leaves nothing behind
            with contextlib.suppress(psutil.Error):
                leftover.kill()
        psutil.wait_procs(leftovers, timeout=5)
        process.wait(5)


def every_process(leader: int) -> list[psutil.Process]:
    """`leader`, its descendants, and every member of its session."""
    try:
        root = psutil.Process(leader)
        found = {p.pid: p for p in [root, *root.children(recursive=True)]}
    except psutil.Error:
        found = {}
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == leader:
                found.setdefault(process.pid, process)
        except (ProcessLookupError, PermissionError):
            continue
    return list(found.values())


def names(processes: list[psutil.Process]) -> set[str]:
    found = set()
    for process in processes:
        try:
            found.add(process.name())
        except psutil.Error:
            continue
    return found


def whole_stack(leader: int, *, through_task: bool) -> list[psutil.Process] | None:
    """Every process of the stack under `leader`, once what stopping must end is there: the
    runtime, PostgreSQL, the broker, the zygotes, the api and an event function (and Task,
    started through ./taskw)."""
    processes = every_process(leader)
    found = names(processes)
    broker = any(kind in name for name in found for kind in BROKER_NAMES)
    expected = {"saga: up", "postgres", "saga: zygote asgi", "saga: api (master)",
                "saga: inventory", *(["task"] if through_task else [])}
    return processes if broker and expected <= found else None


def still_running(processes: list[psutil.Process]) -> list[str]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{process.pid} {process.name()}")
        except psutil.Error:
            continue
    return alive


def assert_stopped(stack: Stack, processes: list[psutil.Process], since: float) -> float:
    """Every process gone within STOP_DEADLINE_S of `since`, the marker clean; the seconds
    it took."""
    def gone() -> bool:
        return not still_running(processes)

    try:
        wait_for(gone, timeout=STOP_DEADLINE_S - (time.monotonic() - since), interval=0.05,
                 message="every process of the stack to end")
    except AssertionError:
        raise AssertionError(f"still running {STOP_DEADLINE_S:.0f} s after the signal: "
                             f"{still_running(processes)}\n{stack.tail()}") from None
    took = time.monotonic() - since
    stack.process.wait(5)
    state = read_state(stack.state_dir) or {}
    assert state.get("phase") == "stopped", (state.get("phase"), stack.tail())
    print(json.dumps({"stopped_in_s": round(took, 2), "broker": session_broker_kind()}))
    return took


@pytest.mark.parametrize(("target", "signum"), [
    ("pid", signal.SIGTERM), ("pid", signal.SIGINT),
    ("group", signal.SIGTERM), ("group", signal.SIGINT)],
    ids=["sigterm-pid", "sigint-pid", "sigterm-group", "sigint-group-like-ctrl-c"])
def test_taskw_up_stops_everything_on_a_signal(env: dict[str, str], state_dir: Path,
                                               target: str, signum: int) -> None:
    with started(TASKW_UP, env, state_dir, through_task=True) as (stack, processes):
        since = time.monotonic()
        if target == "pid":
            os.kill(stack.process.pid, signum)
        else:
            os.killpg(stack.process.pid, signum)
        assert_stopped(stack, processes, since)
    assert stack.process.returncode == 0, stack.tail()
    console = stack.output.read_text(errors="replace")
    # The runtime received the signal once: a graceful stop, nothing forced.
    assert console.count(f"up: stopping on {signal.Signals(signum).name}") == 1, console
    assert "forced" not in console, console


def test_saga_up_stops_everything_on_sigterm(env: dict[str, str], state_dir: Path) -> None:
    with started([*SAGA, "up"], env, state_dir, through_task=False) as (stack, processes):
        since = time.monotonic()
        stack.process.send_signal(signal.SIGTERM)
        assert_stopped(stack, processes, since)
    assert stack.process.returncode == 0, stack.tail()


def test_detach_then_down(env: dict[str, str], state_dir: Path) -> None:
    def taskw(*args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["./taskw", *args], cwd=REPO_ROOT, env=env, text=True,
                              capture_output=True, timeout=timeout, check=False)

    up = taskw("up", "--", "--detach")
    try:
        _detached_then_down(taskw, up, state_dir)
    finally:  # whatever failed, leave no stack behind
        subprocess.run([*SAGA, "down"], cwd=REPO_ROOT, env=env, capture_output=True,
                       timeout=STOP_DEADLINE_S + 20, check=False)


def _detached_then_down(taskw: Callable[..., subprocess.CompletedProcess[str]],
                        up: subprocess.CompletedProcess[str], state_dir: Path) -> None:
    assert up.returncode == 0, up.stdout + up.stderr
    state = read_state(state_dir) or {}
    assert state.get("phase") == "running", up.stdout + up.stderr
    assert f"API      {state['api_url']}" in up.stdout and "saga down" in up.stdout
    assert (state_dir / "logs" / "up.log").stat().st_size > 0  # the console went there
    runtime = int(str(state["pid"]))
    processes = wait_for(lambda: whole_stack(runtime, through_task=False), timeout=60,
                         interval=0.2, message="the runtime, PostgreSQL, the broker and "
                         "the functions")

    # A second stack on the same state dir is refused, naming the fix; the first one runs on.
    again = taskw("up")
    assert again.returncode != 0
    assert "already runs" in again.stdout and "saga down" in again.stdout, again.stdout
    state = read_state(state_dir) or {}
    assert (state.get("pid"), state.get("phase")) == (runtime, "running")
    assert psutil.pid_exists(runtime)

    since = time.monotonic()
    down = taskw("down", timeout=STOP_DEADLINE_S + 20)
    assert down.returncode == 0, down.stdout + down.stderr
    # `down` returns once everything is gone.
    assert still_running(processes) == [], down.stdout
    assert time.monotonic() - since < STOP_DEADLINE_S + 5  # + Task's and Python's start
    assert (read_state(state_dir) or {}).get("phase") == "stopped"

    nothing = taskw("down")
    assert nothing.returncode == 0 and "nothing runs" in nothing.stdout, nothing.stdout


def test_a_second_ctrl_c_forces_and_still_leaves_nothing(env: dict[str, str],
                                                         state_dir: Path) -> None:
    """Last of the module's stacks: the next start after a forced stop recovers (Kafka's
    logs, PostgreSQL's WAL), which takes longer."""
    with started(TASKW_UP, env, state_dir, through_task=True) as (stack, processes):
        since = time.monotonic()
        os.killpg(stack.process.pid, signal.SIGINT)
        wait_for(lambda: (read_state(state_dir) or {}).get("phase") == "stopping", timeout=5,
                 interval=0.01, message="the graceful stop to begin")
        os.killpg(stack.process.pid, signal.SIGINT)  # impatient: Ctrl-C again
        assert_stopped(stack, processes, since)
    assert "up: stopped (forced)" in stack.output.read_text(errors="replace"), stack.tail()


def test_every_process_of_the_stack_shows_its_name(local_stack: LocalStack) -> None:
    state = local_stack.state()
    runtime = psutil.Process(int(state["pid"]))
    assert runtime.cmdline()[0] == "saga: up"
    zygotes = {_title(p) for p in runtime.children()}
    assert {"saga: zygote asgi", "saga: zygote wsgi"} <= zygotes, zygotes

    def titles() -> dict[str, str] | None:
        """Each running function's title, once the api and another one run (a function
        that scaled to zero meanwhile has none)."""
        functions = local_stack.state()["functions"]
        found = {name: _title(psutil.Process(f["pid"])) for name, f in functions.items()
                 if f["state"] == "running" and f["pid"] and psutil.pid_exists(f["pid"])}
        found = {name: title for name, title in found.items() if title}
        return found if "api" in found and len(found) > 1 else None

    shown = wait_for(titles, timeout=60, interval=0.5, message="the api and another function")
    # The Flask functions (the api, the console) run gunicorn: a master and its worker.
    wsgi = {name for name, spec in load_project_manifests(REPO_ROOT).functions.items()
            if spec.env.get("FUNCTION_USE_ASGI") != "true"}
    assert {"api", "console"} <= wsgi
    for name, title in shown.items():
        assert title == (f"saga: {name} (master)" if name in wsgi else f"saga: {name}")
    api = psutil.Process(local_stack.state()["functions"]["api"]["pid"])
    assert {_title(worker) for worker in api.children()} == {"saga: api (worker)"}


def _title(process: psutil.Process) -> str:
    """What `ps` shows as the process's command line ("" once it is gone)."""
    try:
        return " ".join(process.cmdline()).strip()
    except psutil.Error:
        return ""
