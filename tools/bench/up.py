"""`./taskw up` to a healthy API: from starting the command to GET /healthz's first 200; with
--idle, also what the idle stack costs.

    .venv/bin/python -m tools.bench.up [--runs 5] [--command "./taskw up"] [--idle 60]

Each run starts the command on a free API port in a state dir the runs share, then stops it
with Ctrl-C and waits until it exited. --idle S samples every process of the stack for S
seconds once it runs (or --idle-after later): CPU per part, the broker's RSS, all's PSS."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from tools import REPO_ROOT
from tools.infra.ports import free_port
from tools.loadgen.stack import BROKER_PROCESSES
from tools.runtime.state import read_state


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:  # noqa: S310 (loopback)
            return bool(reply.status == 200)
    except OSError:
        return False


def one_run(command: list[str], state_dir: Path, timeout: float, idle_s: float = 0.0,
            idle_after_s: float = 0.0) -> tuple[float, dict[str, Any] | None]:
    port = free_port()
    env = os.environ | {"SAGA_STATE_DIR": str(state_dir), "SAGA_API_PORT": str(port)}
    log = (state_dir / "up-bench.log").open("ab")
    began = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        while not healthy(url):
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited with {process.returncode}; see "
                                   f"{state_dir / 'up-bench.log'}")
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"no healthy API within {timeout:.0f} s")
            time.sleep(0.02)  # polling interval of a measurement
        took = time.monotonic() - began
        return took, (idle(state_dir, idle_s, timeout, idle_after_s) if idle_s > 0 else None)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def idle(state_dir: Path, seconds: float, timeout: float, after_s: float) -> dict[str, Any]:
    """CPU and memory of the stack's process tree over `seconds` of idling, from `after_s`
    seconds after the runtime said "running"."""
    deadline = time.monotonic() + timeout
    while (state := read_state(state_dir) or {}).get("phase") != "running":
        if time.monotonic() > deadline:
            raise RuntimeError("the runtime never said running")
        time.sleep(0.1)  # polling interval of a measurement
    time.sleep(after_s)  # the measurement's own schedule: idle time before sampling
    runtime = psutil.Process(int(state["pid"]))
    first: dict[int, tuple[str, float]] = {}
    last: dict[int, tuple[str, float]] = {}

    def sample(baseline: bool = False) -> list[psutil.Process]:
        tree = [runtime, *runtime.children(recursive=True)]
        for proc in tree:
            try:
                times = proc.cpu_times()
                part = _part(proc, runtime.pid)
            except psutil.Error:
                continue
            cpu = times.user + times.system
            # A process seen in the first sample counts from then; one born later from 0.
            first.setdefault(proc.pid, (part, cpu if baseline else 0.0))
            last[proc.pid] = (part, cpu)
        return tree

    began = time.monotonic()
    tree = sample(baseline=True)
    while time.monotonic() - began < seconds:
        time.sleep(0.5)  # sampling interval of a measurement
        tree = sample()
    window = time.monotonic() - began
    cpu: dict[str, float] = {}
    for pid, (part, spent) in last.items():
        cpu[part] = cpu.get(part, 0.0) + spent - first[pid][1]
    memory: dict[str, float] = {}
    for proc in tree:
        try:
            part, info = _part(proc, runtime.pid), proc.memory_full_info()
        except psutil.Error:
            continue
        memory[f"{part}_pss_mb"] = memory.get(f"{part}_pss_mb", 0.0) + info.pss / 2**20
        if part == "broker":
            memory["broker_rss_mb"] = info.rss / 2**20
    return {"window_s": round(window, 1),
            "cpu_percent": {k: round(100 * v / window, 2) for k, v in sorted(cpu.items())}
            | {"total": round(100 * sum(cpu.values()) / window, 2)},
            "memory_mb": {k: round(v, 1) for k, v in sorted(memory.items())}
            | {"total_pss_mb": round(sum(v for k, v in memory.items()
                                         if k.endswith("_pss_mb")), 1)},
            "after_s": after_s, "broker": state.get("kafka_broker_kind"),
            "up_timings_s": state.get("timings")}


def _part(proc: psutil.Process, runtime_pid: int) -> str:
    name = proc.name()
    if proc.pid == runtime_pid:
        return "runtime"
    if name == "postgres":
        return "postgres"
    if name in BROKER_PROCESSES or "tansu" in name:
        return "broker"
    return "functions"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--command", default="./taskw up")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--idle", type=float, default=0.0, metavar="SECONDS",
                        help="also sample the idle stack's CPU and memory for SECONDS (each run)")
    parser.add_argument("--idle-after", type=float, default=0.0, metavar="SECONDS",
                        help="start sampling SECONDS after the stack said running")
    args = parser.parse_args(argv)
    command = shlex.split(args.command)
    with tempfile.TemporaryDirectory(prefix="up-bench-") as state:
        runs = [one_run(command, Path(state), args.timeout, args.idle, args.idle_after)
                for _ in range(args.runs)]
    times = [took for took, _ in runs]
    for n, (_, idled) in enumerate(runs, 1):
        if idled is not None:
            print(f"run {n} idle: {json.dumps(idled)}")
    print(f"{args.command!r} to a healthy API: first run {times[0]:.2f} s (creates the "
          f"state dir), then median {statistics.median(times[1:] or times):.2f} s, max "
          f"{max(times[1:] or times):.2f} s over {len(times) - 1 or 1} run(s)")
    print("runs (s):", " ".join(f"{t:.2f}" for t in times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
