"""CPU time, context switches and peak RSS of every process of a stack during a run,
sampled with psutil and /proc.

A function is one process (a CloudEvents function: common/serving/serve.py) or a gunicorn master
and its worker (the api): each process is reported as such ("api" and "api/worker"), as
the memory target is per process. Context switches are summed over a process's threads
(/proc/PID/task/*/status), voluntary (it waited: a wake-up) and not. A function restarted
during the run (scale to zero, a SIGKILL) is a new pid: CPU adds up over its pids, peak RSS
is the largest seen.
PostgreSQL is its postmaster and every backend together (they share memory, so its
"peak RSS" is the postmaster's; the sum would count shared buffers many times).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

NOT_FUNCTIONS = frozenset({"postgres", "broker", "runtime", "loadgen"})
Roots = Callable[[], dict[str, int]]  # name -> pid of the processes to follow now


@dataclass
class _Usage:
    cpu_s: dict[int, float] = field(default_factory=dict)  # pid -> last cpu time seen
    base_s: dict[int, float] = field(default_factory=dict)  # pid -> cpu time at first sight
    switches: dict[int, tuple[int, int]] = field(default_factory=dict)  # pid -> last seen
    base_switches: dict[int, tuple[int, int]] = field(default_factory=dict)
    peak_rss: int = 0


class ProcessSampler:
    def __init__(self, roots: Roots, *, interval_s: float = 0.5) -> None:
        self._roots = roots
        self._interval = interval_s
        self._usage: dict[str, _Usage] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = False
        self._thread = threading.Thread(target=self._run, name="procstats", daemon=True)

    def start(self) -> None:
        self.sample()  # the baseline: CPU spent before the run does not count
        self._started = True
        self._thread.start()

    def stop(self) -> dict[str, dict[str, Any]]:
        self._stop.set()
        self._thread.join(5)
        self.sample()
        return self.report()

    def report(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: {"cpu_s": round(sum(u.cpu_s[p] - u.base_s[p] for p in u.cpu_s), 2),
                           "voluntary_switches": sum(u.switches[p][0] - u.base_switches[p][0]
                                                     for p in u.switches),
                           "involuntary_switches": sum(u.switches[p][1]
                                                       - u.base_switches[p][1]
                                                       for p in u.switches),
                           "peak_rss_mb": round(u.peak_rss / 2**20, 1),
                           "uss_mb_at_end": _uss_mb(max(u.cpu_s)) if u.cpu_s else None,
                           "pids": len(u.cpu_s)}
                    for name, u in sorted(self._usage.items())}

    def sample(self) -> None:
        for name, pid in self._roots().items():
            try:
                root = psutil.Process(pid)
                if name == "postgres":
                    self._add(name, root, [root, *root.children(recursive=True)])
                    continue
                self._add(name, root, [root])
                if name in NOT_FUNCTIONS:
                    continue
                for child in root.children(recursive=True):
                    self._add(f"{name}/worker", child, [child])
            except psutil.Error:
                continue  # it ended between listing and reading: a SIGKILL or scale to zero

    def _add(self, name: str, rss_of: psutil.Process, cpu_of: list[psutil.Process]) -> None:
        try:
            rss = rss_of.memory_info().rss
        except psutil.Error:
            return
        times: dict[int, float] = {}
        switches: dict[int, tuple[int, int]] = {}
        for proc in cpu_of:
            try:
                t = proc.cpu_times()
                times[proc.pid] = t.user + t.system
            except psutil.Error:
                continue
            switches[proc.pid] = _switches(proc.pid)
        with self._lock:
            usage = self._usage.setdefault(name, _Usage())
            usage.peak_rss = max(usage.peak_rss, rss)
            for pid, cpu in times.items():
                # A pid seen at start counts from then; one born during the run from zero.
                usage.base_s.setdefault(pid, cpu if not self._started else 0.0)
                usage.cpu_s[pid] = cpu
            for pid, seen in switches.items():
                usage.base_switches.setdefault(pid, seen if not self._started else (0, 0))
                usage.switches[pid] = max(seen, usage.switches.get(pid, (0, 0)))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()


def _switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of the threads `pid` has now (a thread
    that ended takes its count with it)."""
    voluntary = involuntary = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("voluntary_ctxt_switches"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        involuntary += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return voluntary, involuntary


def _uss_mb(pid: int) -> float | None:
    """Memory only this process holds (RSS counts the pages a gunicorn master shares with
    its forked worker twice): read once, at the end, as it walks /proc/PID/smaps."""
    try:
        return round(psutil.Process(pid).memory_full_info().uss / 2**20, 1)
    except (psutil.Error, AttributeError):
        return None


def largest_function(report: dict[str, dict[str, Any]], key: str) -> float:
    """The largest `key` figure (peak_rss_mb, uss_mb_at_end) among function processes:
    postgres, the broker and the runtime are not function processes; a figure not read
    (the process was gone) is skipped."""
    values = [v[key] for k, v in report.items()
              if k.split("/")[0] not in NOT_FUNCTIONS and v.get(key) is not None]
    return max(values, default=0.0)
