"""The zygote (a fork server with the libraries preloaded) starts functions that behave
like spawned ones: own process group, output on their own pipe, exit codes as Popen's;
when it dies, functions are spawned fresh. And the runtime's control port."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.integration.runtime_support import ECHO
from tools import REPO_ROOT
from tools.infra.ports import free_port
from tools.runtime.control import ControlClient, ControlError, ControlServer
from tools.runtime.serving import children
from tools.runtime.serving import starter as starter_module
from tools.runtime.serving.starter import ProcessStarter
from tools.runtime.serving.zygote import flavour_of
from tools.runtime.serving.zygote_client import ZygoteClient

pytestmark = pytest.mark.integration

def echo_args(port: int) -> list[str]:
    return ["--target", "health", "--source", ECHO, "--signature-type", "http",
            "--host", "127.0.0.1", "--port", str(port)]


def answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def test_a_forked_function_is_a_process_of_its_own(tmp_path: Path) -> None:
    client = ZygoteClient(REPO_ROOT, os.environ)
    try:
        port = free_port()
        child = client.spawn(echo_args(port), cwd=tmp_path, env=dict(os.environ))
        wait_for(lambda: answers(port), timeout=20, message="the forked function to answer")
        assert child.poll() is None
        assert os.getpgid(child.pid) == child.pid  # its own group: a stop reaches gunicorn
        assert os.readlink(f"/proc/{child.pid}/cwd") == str(tmp_path)
        os.killpg(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
        # Its output pipe ends with it: no write end was left open in the runtime.
        pipe = child.stdout
        assert pipe is not None
        reader = threading.Thread(target=pipe.read, daemon=True)
        reader.start()
        reader.join(10)
        assert not reader.is_alive()
    finally:
        client.close()
    assert client._process.poll() is not None


def get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize("use_zygote", [True, False])
def test_stdout_can_go_to_a_file_and_stderr_to_the_pipe(tmp_path: Path,
                                                        use_zygote: bool) -> None:
    """How the runtime starts a function: its ECS lines (stdout) straight to its log file,
    anything on stderr through the pipe the runtime reads."""
    starter = ProcessStarter(cwd=REPO_ROOT, env=os.environ, use_zygote=use_zygote)
    log = tmp_path / "function.ndjson"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        port = free_port()
        child = starter.start(echo_args(port), cwd=tmp_path, env=dict(os.environ), stdout=fd)
        os.close(fd)
        wait_for(lambda: answers(port), timeout=30, message="the function to answer")
        assert get(port, "/say") == 200
        wait_for(lambda: '"on stdout"' in log.read_text(), message="its stdout in the file")
        assert child.stdout is None and child.stderr is not None
        children.terminate(child, 5)
        said = child.stderr.read().decode()
        assert "said on stderr" in said and "on stdout" not in said
        assert "said on stderr" not in log.read_text()
    finally:
        starter.close()


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_each_flavour_of_zygote_holds_only_its_own_libraries() -> None:
    """The CloudEvents functions fork from a zygote without JWT (cryptography), the api
    from one without uvicorn (uvloop): neither carries the other's memory."""
    starter = ProcessStarter(cwd=REPO_ROOT, env=os.environ)
    try:
        starter.prepare()
        asgi, wsgi = starter._zygotes["asgi"], starter._zygotes["wsgi"]
        assert "uvloop" in _maps(asgi.pid) and "cryptography" not in _maps(asgi.pid)
        assert "cryptography" in _maps(wsgi.pid) and "uvloop" not in _maps(wsgi.pid)
    finally:
        starter.close()


def test_the_flavour_is_read_as_functions_framework_reads_its_asgi_flag() -> None:
    assert flavour_of({"FUNCTION_USE_ASGI": "true"}) == flavour_of({"FUNCTION_USE_ASGI": "1"})
    assert flavour_of({"FUNCTION_USE_ASGI": "True"}) == "asgi"
    assert flavour_of({"FUNCTION_USE_ASGI": "0"}) == flavour_of({}) == "wsgi"


def test_without_a_zygote_functions_are_spawned(tmp_path: Path) -> None:
    lines: list[str] = []
    starter = ProcessStarter(cwd=REPO_ROOT, env=os.environ, report=lines.append)
    try:
        starter.prepare(("wsgi",))
        zygote = starter._zygotes["wsgi"]  # the echo function's flavour
        children.terminate(zygote._process, 5)  # the zygote dies under the runtime
        port = free_port()
        child = starter.start(echo_args(port), cwd=tmp_path, env=dict(os.environ))
        wait_for(lambda: answers(port), timeout=30, message="the spawned function to answer")
        assert any("starting functions without it" in line for line in lines), lines
        children.terminate(child, 5)
    finally:
        starter.close()


def test_an_edit_to_the_common_library_reloads_the_zygote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    starter = ProcessStarter(cwd=REPO_ROOT, env=os.environ, report=lines.append)
    try:
        before_port, after_port = free_port(), free_port()
        before = starter.start(echo_args(before_port), cwd=tmp_path, env=dict(os.environ))
        first = starter._zygotes["wsgi"]  # the echo function is no ASGI one
        edited = time.time()  # a file of common/ changes after the zygote loaded it
        monkeypatch.setattr(starter_module, "_newest_source", lambda: edited)
        after = starter.start(echo_args(after_port), cwd=tmp_path, env=dict(os.environ))
        wait_for(lambda: answers(before_port) and answers(after_port), timeout=30,
                 message="both functions to answer")
        assert starter._zygotes["wsgi"].pid != first.pid
        assert "zygote (wsgi): common/ changed; loading it again" in lines
        # The old zygote stays while a function it started runs (closing it would
        # SIGTERM that function), and goes once none does.
        assert first._process.poll() is None
        children.terminate(before, 5)
        children.terminate(starter.start(echo_args(free_port()), cwd=tmp_path,
                                      env=dict(os.environ)), 5)
        assert first._process.poll() is not None
        children.terminate(after, 5)
    finally:
        starter.close()


class FakeSource:
    def __init__(self) -> None:
        self.paused = False

    def pause(self, timeout: float = 30.0) -> bool:
        self.paused = True
        return True

    def resume(self) -> None:
        self.paused = False


def test_the_control_port_pauses_and_resumes_sources() -> None:
    source = FakeSource()
    with ControlServer({"inventory": (source, "saga-inventory")}) as server:
        client = ControlClient(server.url, server.token)
        client.pause("inventory")
        assert source.paused
        assert client.sources() == {"inventory": {"paused": True,
                                                  "consumer_group": "saga-inventory"}}
        client.resume("inventory")
        assert not source.paused
        with pytest.raises(ControlError, match="no KafkaSource 'nope'"):
            client.pause("nope")
        with pytest.raises(ControlError, match="HTTP 403"):
            ControlClient(server.url, "wrong").pause("inventory")
        assert not source.paused
    with pytest.raises(ControlError, match="is `saga up` still running"):
        ControlClient(server.url, server.token, timeout=2).sources()
