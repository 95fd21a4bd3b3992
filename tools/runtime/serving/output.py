"""A function process's stderr pipe (tracebacks, a server's own messages), line by line:
every line into its .ndjson file (its stdout, the ECS lines, goes there directly:
function_process.py). An ECS line is written as it is, and the console shows a handled
event (event.action saga.*) or a warning or worse as one readable line; any other line is
wrapped into a minimal ECS document, so the file stays valid NDJSON, and shown prefixed by
the function's name. The last lines are kept to explain a function that fails to start."""

from __future__ import annotations

import collections
import json
import threading

from tools.runtime.console import Console, LogFile, is_saga_event, is_warning
from tools.runtime.serving.children import Child


class OutputPump:
    """One reader thread per process start. The tail is safe to read from any thread
    (deque appends and copies are atomic)."""

    def __init__(self, name: str, process: Child, log: LogFile,
                 console: Console) -> None:
        self._name, self._log, self._console = name, log, console
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self._thread = threading.Thread(target=self._run, args=(process,),
                                        name=f"logs-{name}", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the end of the output (it ends when the process and its children do)."""
        self._thread.join(timeout)

    def last_lines(self, count: int = 20) -> str:
        return "\n".join(f"    {line}" for line in list(self.tail)[-count:]) or "    (no output)"

    def _run(self, process: Child) -> None:
        pipe = process.stdout if process.stdout is not None else process.stderr
        assert pipe is not None
        with pipe:
            for raw in iter(pipe.readline, b""):
                self.forward(raw.decode("utf-8", "replace").rstrip("\r\n"))

    def forward(self, line: str) -> None:
        if not line:
            return
        self.tail.append(line)
        doc = None
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                doc = None
        if isinstance(doc, dict):
            self._log.write_raw(line)
            if is_warning(doc):
                self._console.ecs(doc)
            elif is_saga_event(doc):
                self._console.routine(doc)
        else:
            self._log.write_text(line)
            self._console.line(f"{self._name:<14} | {line}")
