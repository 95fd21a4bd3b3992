"""Every function process of one runtime: the Knative Serving part of the emulation. Like a
new Knative revision, every function starts with the runtime (initial-scale, default 1;
"0" waits for its first event), the ingress first and the others in the background. It
keeps min-scale >= 1 functions running (restarting one that crashed), scales idle
min-scale 0 functions to zero, and stops everything in parallel at the end. Thread-safe:
the process map is fixed at construction and each FunctionProcess guards itself."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tools.manifests.specs import Manifests
from tools.runtime.console import Console
from tools.runtime.eventing.delivery import FunctionUnavailable
from tools.runtime.logtail import LogTail
from tools.runtime.serving.function_process import FunctionProcess, FunctionStatus
from tools.runtime.serving.starter import ProcessStarter


class Supervisor:
    def __init__(
        self,
        manifests: Manifests,
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_dir: Path,
        console: Console,
        idle_scale_to_zero_s: float,
        ingress_port: int | None,
        preferred_ports: Mapping[str, int] | None = None,
        on_change: Callable[[FunctionStatus], None] | None = None,
        use_zygote: bool = True,
    ) -> None:
        self._console = console
        self.starter = ProcessStarter(cwd=cwd, env=env, use_zygote=use_zygote,
                                      report=console.line)
        # One thread shows the console its share of every function's log lines.
        self._tail = LogTail(console)
        ingress = manifests.ingress()
        event_driven = manifests.event_driven()
        self.processes: dict[str, FunctionProcess] = {}
        for name, manifest_spec in sorted(manifests.functions.items()):
            spec = manifest_spec
            idle = idle_scale_to_zero_s
            if spec.retention_period:  # the manifest's retention period wins when set
                idle = spec.retention_period
            if spec.min_scale == 0 and name not in event_driven:
                # Nothing here would start it again (no activator in front of plain HTTP
                # locally), so an HTTP-only function stays up instead of scaling to zero.
                spec = dataclasses.replace(spec, min_scale=1)
            self.processes[name] = FunctionProcess(
                spec, cwd=cwd, env=env, log_dir=log_dir, console=console, idle_after=idle,
                port=ingress_port if ingress is not None and name == ingress.name else None,
                preferred_port=(preferred_ports or {}).get(name), on_change=on_change,
                starter=self.starter, tail=self._tail)
        self._ingress = ingress.name if ingress is not None else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._background: list[threading.Thread] = []

    def __getitem__(self, name: str) -> FunctionProcess:
        return self.processes[name]

    @property
    def ingress(self) -> FunctionProcess | None:
        return self.processes[self._ingress] if self._ingress else None

    def start_ingress(self) -> None:
        """Start the ingress now (raises if it cannot start): people wait on it."""
        ingress = self.ingress
        if ingress is not None and ingress.spec.starts_with_runtime:
            ingress.start()

    def start_initial(self) -> None:
        """Start every other function with a non-zero initial scale, in the background and
        in parallel; a failure is shown on the console (min-scale >= 1 functions are then
        tried again by the scaler, the others on their first event)."""
        for process in self.processes.values():
            if process.name == self._ingress or not process.spec.starts_with_runtime:
                continue
            thread = threading.Thread(target=self._start_one, args=(process,),
                                      name=f"start-{process.name}", daemon=True)
            thread.start()
            self._background.append(thread)

    def wait_started(self, timeout: float) -> bool:
        """True once every background start of start_initial() has ended (tests, bench)."""
        deadline = time.monotonic() + timeout
        for thread in self._background:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._background)

    def _start_one(self, process: FunctionProcess) -> None:
        try:
            process.start()
        except FunctionUnavailable as exc:
            self._console.line(f"{process.name:<14} | could not start: {exc}")

    def start_scaler(self) -> None:
        """Start the thread that scales idle functions to zero and keeps warm ones up."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._scale, name="runtime-scaler",
                                            daemon=True)
            self._thread.start()

    def _scale(self) -> None:
        # Check often enough that a function is stopped within ~25% of its idle period.
        interval = min([1.0] + [p.idle_after / 4 for p in self.processes.values()])
        while not self._stop.wait(max(interval, 0.05)):
            for process in self.processes.values():
                process.stop_if_idle()
                process.keep_warm()

    def statuses(self) -> list[FunctionStatus]:
        return [p.status() for p in self.processes.values()]

    def stop(self) -> None:
        """Stop scaling, then every process, in parallel (each may take its grace period)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with ThreadPoolExecutor(max_workers=max(1, len(self.processes)),
                                thread_name_prefix="stop") as pool:
            list(pool.map(lambda p: p.stop(), self.processes.values()))
        self.starter.close()
        self._tail.close()
