"""Instructions per event under callgrind (user-space instructions of the whole process: they
do not depend on the machine's load). **Alone** (ChainChild): the in-process chain runs in a
child under valgrind that announces each function's window and waits while the parent zeroes
the counters, then dumps them as the window closes, so each dump holds one function's
deliveries; the child stays up between runs (the retention bench asks at each table size).
**Served** (Counted): every function's process runs under valgrind; the parent, which POSTs
the events, zeroes and dumps it around its window.
Child: `python -m tools.bench.event.callgrind SPEC_JSON`, in the world's environment."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from cloudevents.http import CloudEvent
from sqlalchemy import create_engine

from tools.bench.callgrind import OUT_FILE, CallgrindError, Counters, require_valgrind
from tools.bench.event.chain import Mode, run_chain
from tools.bench.event.inprocess import InProcess
from tools.runtime.serving import children
from tools.runtime.serving.children import Child
from tools.runtime.serving.starter import ProcessStarter

PREFIX = "CALLGRIND "
# What valgrind runs under: no per-instruction data (function totals are enough), names
# written out in every dump (compressed, a later dump names a function only by the number
# an earlier one gave it: callgrind_annotate cannot read it alone), and the dumps of each
# process in a directory of its own.
VALGRIND = ("valgrind", "--tool=callgrind", "--dump-instr=no", "--compress-strings=no")
# Under valgrind a process runs ~50x slower: its start and the batched outbox marks too.
START_TIMEOUT_S = 600.0
SETTLE_S = 2.0

Figures = dict[str, dict[str, float]]


def _add(figures: Figures, function: str, events: int, instructions: int) -> None:
    entry = figures.setdefault(function, {"events": 0, "instructions": 0})
    entry["events"] += events
    entry["instructions"] += instructions
    entry["m_instructions_per_event"] = round(
        entry["instructions"] / max(entry["events"], 1) / 1e6, 3)


# --- alone: the chain in a child under valgrind ------------------------------------------

class _Announced(InProcess):
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
    """Run the chain as the parent asks: `warm N`, then `run N` (announcing each window)."""
    from tools.settings import get_local_settings

    settings = get_local_settings()  # the world's environment, as a function reads it
    mode = _Announced(settings, Path(spec["log"]))
    engine = create_engine(settings.sqlalchemy_url())
    print(PREFIX + "ready", flush=True)
    try:
        for line in sys.stdin:
            word, orders = line.split()
            mode.measuring = word == "run"
            run_chain(mode, engine, tokens=spec["tokens"], skus=spec["skus"],
                      orders=int(orders), postgres=lambda: 0.0, broker=lambda: 0.0,
                      seed=7 if mode.measuring else 1)
            mode.measuring = False
            print(PREFIX + "done", flush=True)
    finally:
        mode.close()
        engine.dispose()


class ChainChild:
    """The parent's side of `child`: one child under valgrind, up until `close`; each `run`
    measures the chain's instructions per event of each function anew."""

    def __init__(self, env: dict[str, str], spec: dict[str, Any]) -> None:
        require_valgrind()
        self.out_dir = Path(tempfile.mkdtemp(prefix="saga-callgrind-"))
        self.process = subprocess.Popen(
            [*VALGRIND, f"--callgrind-out-file={self.out_dir}/{OUT_FILE}", sys.executable,
             "-m", "tools.bench.event.callgrind", json.dumps(spec)],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=(self.out_dir / "valgrind.log").open("wb"), text=True)
        self.counters = Counters(self.process.pid, self.out_dir)
        self.windows = 0
        try:
            self.expect("ready")
        except BaseException:
            self.close()
            raise

    def run(self, orders: int, warmup: int, dumps: Path | None = None) -> Figures:
        """Instructions per event of each function (the api: per POST /orders) over
        `orders` orders after `warmup`; `dumps`: keep each window's dump there as
        FUNCTION.N.out."""
        self.send(f"warm {warmup}")
        self.expect("done")
        self.send(f"run {orders}")
        figures: Figures = {}
        while (line := self.expect("begin", "done")) != "done":
            self.windows += 1
            self.counters.zero()
            self.send("ok")
            events = int(self.expect("end").split()[1])
            function = line.split()[1]
            keep = None if dumps is None else dumps / f"{function}.{self.windows}.out"
            _add(figures, function, events, self.counters.dump(keep))
            self.send("ok")
        return figures

    def send(self, line: str) -> None:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()

    def expect(self, *words: str) -> str:
        stdout = self.process.stdout
        assert stdout is not None
        for raw in stdout:
            if raw.startswith(PREFIX):
                line = raw[len(PREFIX):].strip()
                if line.split()[0] in words:
                    return line
                raise CallgrindError(f"expected {words}, the child said {line!r}")
        log = (self.out_dir / "valgrind.log").read_text(errors="replace")[-3000:]
        raise CallgrindError(f"the child under callgrind ended: {log}")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(300)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.out_dir, ignore_errors=True)


def alone(env: dict[str, str], spec: dict[str, Any], *, orders: int, warmup: int,
          dumps: Path | None = None) -> Figures:
    """One ChainChild's one run."""
    chain = ChainChild(env, spec)
    try:
        return chain.run(orders, warmup, dumps)
    finally:
        chain.close()


# --- served: every function's process under valgrind -------------------------------------

class ValgrindStarter(ProcessStarter):
    """Spawns every function fresh (no zygote) under valgrind, its dumps in a directory of
    its own; remembers which directory belongs to which pid."""

    def __init__(self, *, cwd: Path, env: dict[str, str]) -> None:
        super().__init__(cwd=cwd, env=env, use_zygote=False)
        self.base = Path(tempfile.mkdtemp(prefix="saga-callgrind-served-"))
        self.out_dirs: dict[int, Path] = {}

    def start(self, args: list[str], *, cwd: Path, env: dict[str, str],
              stdout: int | None = None) -> Child:
        out_dir = Path(tempfile.mkdtemp(dir=self.base))
        process = children.spawn(
            [*VALGRIND, f"--callgrind-out-file={out_dir}/{OUT_FILE}", sys.executable, "-m",
             "tools.runtime.serving.entrypoint", *args], cwd=cwd, env=env, stdout=stdout)
        self.out_dirs[process.pid] = out_dir
        return process

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.base, ignore_errors=True)


class Counted:
    """A served mode whose windows are counted by callgrind: the function's counters are
    zeroed as its window begins and dumped once the window settled."""

    def __init__(self, served: Mode, pid_of: Callable[[str], int | None],
                 starter: ValgrindStarter) -> None:
        self._served, self._pid_of, self._starter = served, pid_of, starter
        self.measuring = False
        self.figures: Figures = {}
        self._function = ""
        self._events = 0

    def place(self, token: str, body: dict[str, Any], key: str) -> str:
        self._events += 1
        return self._served.place(token, body, key)

    def begin(self, function: str) -> None:
        self._served.begin(function)
        self._function, self._events = function, 0
        counters = self._counters()
        if self.measuring and counters.countable():
            counters.zero()

    def deliver(self, consumer: str, event: CloudEvent) -> None:
        self._events += 1
        self._served.deliver(consumer, event)

    def meter(self, function: str) -> Callable[[], float]:
        return self._served.meter(function)

    def settle(self) -> None:
        time.sleep(SETTLE_S)  # the outbox marks, written every 0.1 s, far slower here
        counters = self._counters()
        if self.measuring and counters.countable():
            _add(self.figures, self._function, self._events, counters.dump())

    def _counters(self) -> Counters:
        pid = self._pid_of(self._function)
        if pid is None:
            raise CallgrindError(f"{self._function} is not running")
        return Counters(pid, self._starter.out_dirs[pid])


if __name__ == "__main__":
    child(json.loads(sys.argv[1]))
