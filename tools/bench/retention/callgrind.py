"""Instructions per event under callgrind, as docs/benchmarks.md ("A lean event path") counts
them: the in-process chain runs in a child process (`python -m tools.bench.retention.callgrind
SPEC_JSON`, the world's environment) under `valgrind --tool=callgrind`; at each function's
window the child says so on stdout and waits, and the parent zeroes the counters
(`callgrind_control -z`) as the window opens and dumps them (`-d`) as it closes, so each dump
holds one function's deliveries and nothing else. The child stays up between table sizes
(its imports under valgrind take minutes): the parent grows the tables, then asks again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from cloudevents.http import CloudEvent

from tools.bench.event.chain import run_chain
from tools.bench.event.inprocess import InProcess

PREFIX = "CALLGRIND "


class CallgrindError(RuntimeError):
    """valgrind is missing, or the child did not follow the protocol."""


class Windowed(InProcess):
    """The child's mode: each window announced, then held until the parent answers."""

    measuring = False
    _events = 0

    def begin(self, function: str) -> None:
        super().begin(function)
        self._events = 0
        if self.measuring:
            _say(f"begin {function}")

    def place(self, token: str, body: dict[str, Any], key: str) -> str:
        self._events += 1
        return super().place(token, body, key)

    def deliver(self, consumer: str, event: CloudEvent) -> None:
        self._events += 1
        super().deliver(consumer, event)

    def settle(self) -> None:
        super().settle()
        if self.measuring:
            _say(f"end {self._events}")


def _say(line: str) -> None:
    print(PREFIX + line, flush=True)
    if sys.stdin.readline().strip() != "ok":
        raise CallgrindError("the parent did not answer")


def child(spec: dict[str, Any]) -> None:
    from sqlalchemy import create_engine

    from tools.settings import LocalSettings

    settings = LocalSettings()  # the world's environment, as a function reads it
    mode = Windowed(settings, Path(spec["log"]))
    engine = create_engine(settings.sqlalchemy_url())
    print(PREFIX + "ready", flush=True)
    try:
        for line in sys.stdin:
            orders = int(line.split()[1])  # "run N" or "warm N"
            mode.measuring = line.startswith("run")
            run_chain(mode, engine, tokens=spec["tokens"], skus=spec["skus"], orders=orders,
                      postgres=lambda: 0.0, broker=lambda: 0.0, seed=len(line))
            mode.measuring = False
            print(PREFIX + "done", flush=True)
    finally:
        mode.close()
        engine.dispose()


class Callgrind:
    """The parent's side: one child under valgrind, runs of the chain, Ir per function."""

    def __init__(self, env: dict[str, str], spec: dict[str, Any]) -> None:
        if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
            raise CallgrindError("valgrind is not installed (Debian: apt-get install valgrind)")
        self._dir = Path(tempfile.mkdtemp(prefix="saga-callgrind-"))
        self._process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--dump-instr=no", "--collect-systime=no",
             f"--callgrind-out-file={self._dir}/cg.out", sys.executable, "-m",
             "tools.bench.retention.callgrind", json.dumps(spec)],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=(self._dir / "valgrind.log").open("wb"), text=True)
        self._expect("ready")

    def run(self, orders: int, warmup: int) -> dict[str, dict[str, float]]:
        """Instructions per event of each function, over `orders` orders."""
        self._send(f"warm {warmup}")
        self._expect("done")
        self._send(f"run {orders}")
        result: dict[str, dict[str, float]] = {}
        while True:
            line = self._expect("begin", "done")
            if line == "done":
                return result
            function = line.split()[1]
            self._control("-z")
            self._send("ok")
            events = int(self._expect("end").split()[1])
            instructions = self._dump()
            self._send("ok")
            entry = result.setdefault(function, {"events": 0, "instructions": 0})
            entry["events"] += events
            entry["instructions"] += instructions
            entry["m_instructions_per_event"] = round(
                entry["instructions"] / max(entry["events"], 1) / 1e6, 3)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(120)
        except subprocess.TimeoutExpired:
            self._process.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _dump(self) -> int:
        before = set(self._dir.glob("cg.out.*"))
        self._control("-d")
        [dump] = set(self._dir.glob("cg.out.*")) - before
        for line in dump.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
        raise CallgrindError(f"no totals in {dump}")

    def _control(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self._process.pid)], check=True,
                       capture_output=True, timeout=600)

    def _send(self, line: str) -> None:
        stdin: IO[str] | None = self._process.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()

    def _expect(self, *words: str) -> str:
        stdout = self._process.stdout
        assert stdout is not None
        for raw in stdout:
            if raw.startswith(PREFIX):
                line = raw[len(PREFIX):].strip()
                if line.split()[0] in words:
                    return line
                raise CallgrindError(f"expected {words}, the child said {line!r}")
        log = (self._dir / "valgrind.log").read_text(errors="replace")[-2000:]
        raise CallgrindError(f"the child under callgrind ended: {log}")


if __name__ == "__main__":
    child(json.loads(sys.argv[1]))
