"""The demo's shortcut for the payment_timeout ending. A PingSource ticks the timeouts
function once a minute (cron ticks no faster); rather than wait for it, once the order's
deadline has passed the demo runs that function's sweep (functions.timeouts.sweep) once
itself, on the stack's database and broker: the same code, row lock, history row (actor
"timeouts") and order.cancelled event. `--wait-for-ping` waits for the real tick instead,
and so does the demo when the stack's DATABASE_URL holds a password (runtime-state.json
masks it)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from pydantic import SecretStr

from common.resources import Resources
from common.settings import Settings
from tools.demo.drive import Expirer
from tools.ops.context import runtime_broker_kind

SHORTCUT_NOTE = ("the demo ran the timeouts sweep itself instead of waiting up to a minute "
                 "for the PingSource's next tick (same code: functions/timeouts/sweep.py)")


class SweepNow(Expirer):
    waits_for_ping = False

    def __init__(self, settings: Settings) -> None:
        self._resources = Resources(settings)
        self._lock = threading.Lock()  # one sweep at a time from this process

    def expire(self) -> str:
        from functions.timeouts.sweep import sweep

        with self._lock:
            counts = sweep(self._resources)
        return f"{SHORTCUT_NOTE}; it cancelled {counts['cancelled']} order(s)"

    def close(self) -> None:
        self._resources.close(timeout=5.0)


def sweep_now(base: Settings, runtime_state: dict[str, Any]) -> SweepNow | None:
    """The shortcut for the stack described by `runtime_state`, or None when its database
    cannot be reached from here (a masked password)."""
    database_url = runtime_state.get("database_url")
    bootstrap = runtime_state.get("kafka_bootstrap")
    if not isinstance(database_url, str) or "***" in database_url or not bootstrap:
        return None
    settings = base.model_copy(update={
        "database_url": SecretStr(database_url),
        "kafka_bootstrap_servers": str(bootstrap),
        "kafka_broker_kind": runtime_broker_kind(runtime_state),
        "function_name": "demo",
        # The sweep also reports long-stuck orders; that report is not this demo's business.
        "stuck_after_s": 10 * 365 * 24 * 3600,
    })
    # The sweep logs through the "saga" loggers; this process has no ECS logging set up, and
    # its console is the demo's: keep their lines out of it (the stack's logs have the rest).
    logging.getLogger("saga").addHandler(logging.NullHandler())
    logging.getLogger("saga").propagate = False
    return SweepNow(settings)
