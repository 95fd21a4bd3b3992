"""`./taskw up` to a healthy API: from starting the command to GET /healthz answering 200.

    .venv/bin/python -m tools.ops.up_bench [--runs 5] [--command "./taskw up"]

Each run starts the command in its own state dir (one temporary dir shared by the runs,
like a developer's .local: the first run also creates the embedded PostgreSQL's data
directory, later runs find it) on a free API port, times it to the first 200 from
/healthz, then stops it with Ctrl-C (SIGINT to its process group) and waits until it has
exited. DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS in the environment are used if set. A
measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
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

from tools import REPO_ROOT
from tools.infra.ports import free_port


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:  # noqa: S310 (loopback)
            return bool(reply.status == 200)
    except OSError:
        return False


def one_run(command: list[str], state_dir: Path, timeout: float) -> float:
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
        return time.monotonic() - began
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--command", default="./taskw up")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    command = shlex.split(args.command)
    with tempfile.TemporaryDirectory(prefix="up-bench-") as state:
        times = [one_run(command, Path(state), args.timeout) for _ in range(args.runs)]
    print(f"{args.command!r} to a healthy API: first run {times[0]:.2f} s (creates the "
          f"state dir), then median {statistics.median(times[1:] or times):.2f} s, max "
          f"{max(times[1:] or times):.2f} s over {len(times) - 1 or 1} run(s)")
    print("runs (s):", " ".join(f"{t:.2f}" for t in times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
