"""The "alone" column: every function in this process, no server in front. Events go
straight to StepRuntime.handle (as common/event_server.py calls it, minus the HTTP and
CloudEvents parsing), POST /orders through the api's Flask test client; ECS lines are
formatted and written to a file, as a function writes them to its stdout. The CPU is this
process's (every thread: librdkafka's, the outbox marks')."""

from __future__ import annotations

import contextlib
import importlib
import logging
import resource
import sys
from pathlib import Path
from typing import Any, TextIO

from cloudevents.http import CloudEvent
from flask.testing import FlaskClient
from functions_framework import create_app

from common.events import catalogue as c
from common.logging import configure_logging
from common.resources import Resources
from common.serving.asgi_app import resources_of
from common.settings import Settings
from common.step import StepRuntime, no_store
from tools import REPO_ROOT
from tools.bench.event.chain import Meter

STEP_FUNCTIONS = (c.INVENTORY, c.ORDER_SAGA, c.PAYMENTS, c.SHIPPING, c.NOTIFICATIONS)


class BenchError(RuntimeError):
    """A function refused what the bench sent it: the figures would mean nothing."""


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class InProcess:
    def __init__(self, settings: Settings, log_path: Path) -> None:
        self._log: TextIO = log_path.open("a", encoding="utf-8")
        self._steps: dict[str, StepRuntime] = {}
        # One process plays every step function: one engine, producer and marker for all.
        self.resources = Resources(settings.model_copy(update={"function_name": "bench"}))
        for name in STEP_FUNCTIONS:
            module = importlib.import_module(f"functions.{name.replace('-', '_')}.handlers")
            self._steps[name] = StepRuntime(name, module.HANDLERS, self.resources,
                                            getattr(module, "STORE", no_store))
        with contextlib.redirect_stdout(self._log):  # main.py configures logging on import
            app = create_app(target="api", source=str(REPO_ROOT / "functions/api/main.py"),  # type: ignore[no-untyped-call]
                             signature_type="http")
        self._api_resources = resources_of(sys.modules.get("main"))
        self.api: FlaskClient = app.test_client()

    def request(self, method: str, path: str, token: str, body: Any = None,
                headers: dict[str, str] | None = None) -> Any:
        response = self.api.open(path, method=method, json=body,
                                 headers={"Authorization": f"Bearer {token}", **(headers or {})})
        if response.status_code >= 300:
            raise BenchError(f"{method} {path}: {response.status_code} "
                             f"{response.get_data(as_text=True)[:300]}")
        return response.get_json()

    def place(self, token: str, body: dict[str, Any], key: str) -> str:
        return str(self.request("POST", "/orders", token, body, {"Idempotency-Key": key})["id"])

    def begin(self, function: str) -> None:
        with contextlib.redirect_stdout(self._log):
            configure_logging(function)  # its lines carry its service.name

    def deliver(self, consumer: str, event: CloudEvent) -> None:
        self._steps[consumer].handle(event)

    def meter(self, function: str) -> Meter:
        return own_cpu

    def settle(self) -> None:
        for resources in (self.resources, self._api_resources):
            if resources is not None:
                resources.marks.flush()

    def close(self) -> None:
        root = logging.getLogger()  # configure_logging's handler writes to the file closed here
        for handler in [h for h in root.handlers if getattr(h, "_saga_ecs", False)]:
            root.removeHandler(handler)
        self._log.close()
        for resources in (self.resources, self._api_resources):
            if resources is not None:
                resources.close()
