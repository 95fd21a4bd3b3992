"""What every function's main.py does at import: ECS logging, error handlers, the step
runtime. Nothing here connects to anything; connections open on the first event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.logging import configure_logging
from common.settings import get_settings
from common.step import Handler, StepRuntime, install_error_handlers


def event_function(name: str, handlers: Mapping[str, Handler], framework: Any) -> StepRuntime:
    configure_logging(name, get_settings().log_level)
    install_error_handlers(framework)
    return StepRuntime(name, handlers)
