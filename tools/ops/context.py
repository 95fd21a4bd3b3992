"""Where an operator command finds things: the settings (environment) or, for what they
leave unset, the local runtime running in the state dir (runtime-state.json); and the
project's manifests (KafkaSource names -> consumer groups and topics). Explicit settings
win, even while `saga up` runs here. require_kafka / require_database probe what they hand
out, once (tools/infra/reach.py): a command that cannot reach it stops with one line
(Unreachable, exit 1) naming the address, where it came from and the fix."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from common.settings import Settings
from common.settings_errors import env_name
from tools import REPO_ROOT
from tools.infra.reach import (
    Unreachable,
    check_database,
    check_kafka,
    runtime_origin,
    setting_origin,
)
from tools.manifests.loader import ManifestError, load_project_manifests
from tools.manifests.specs import KafkaSourceSpec, Manifests
from tools.runtime.control import ControlClient
from tools.runtime.state import read_state, state_path
from tools.settings import KafkaBrokerKind, LocalSettings


class OpsError(Exception):
    """A problem the operator can fix; the message says how."""


@dataclass(frozen=True)
class OpsContext:
    settings: Settings  # database and Kafka filled in from the runtime where unset
    state_dir: Path
    runtime: dict[str, Any] | None  # runtime-state.json of a runtime that is running
    manifests: Manifests
    # What came from the runtime's state file rather than the settings: "kafka", "database".
    from_runtime: frozenset[str] = frozenset()
    _reached: set[str] = field(default_factory=set, compare=False, repr=False)

    @property
    def log_dir(self) -> Path:
        if self.runtime and self.runtime.get("log_dir"):
            return Path(self.runtime["log_dir"])
        return self.state_dir / "logs"

    def require_kafka(self) -> Settings:
        """The settings, once their Kafka answered; else Unreachable (one line, the fix)."""
        if not self.settings.kafka_bootstrap_servers:
            raise Unreachable(self._missing("kafka_bootstrap_servers", "broker", "host:9092"))
        if "kafka" not in self._reached:
            check_kafka(self.settings, *self._origin("kafka", "kafka_bootstrap_servers"))
            self._reached.add("kafka")
        return self.settings

    def require_database(self) -> Settings:
        """The settings, once their database let us in; else Unreachable (one line)."""
        url = self.settings.database_url
        if url is None:
            if self.runtime is not None and "***" in str(self.runtime.get("database_url")):
                raise Unreachable(
                    f"the stack running in {self.state_dir} uses a database with a password, "
                    f"which its state file does not keep: set {self._env('database_url')} to "
                    "that database's URL")
            raise Unreachable(self._missing("database_url", "database",
                                            "postgresql://user@host:5432/db"))
        if "database" not in self._reached:
            check_database(url.get_secret_value(), *self._origin("database", "database_url"))
            self._reached.add("database")
        return self.settings

    def no_stack(self) -> str | None:
        """Why there is nothing to ask at all (no runtime here, nothing configured), or None."""
        if (self.runtime is None and not self.settings.kafka_bootstrap_servers
                and self.settings.database_url is None):
            return f"no stack is running in {self.state_dir}; start one with ./taskw up"
        return None

    def _missing(self, name: str, what: str, example: str) -> str:
        variable = self._env(name)
        if self.runtime is None:
            return (f"no stack is running in {self.state_dir} and {variable} is not set: "
                    f"start one with ./taskw up, or set {variable}={example}")
        return (f"the stack running in {self.state_dir} names no {what} yet (phase "
                f"{self.runtime.get('phase')}): wait until ./taskw up reports it is running, "
                f"or set {variable}={example}")

    def _origin(self, part: str, name: str) -> tuple[str, str]:
        """(where the address came from, how to fix it), in the words of a probe's line."""
        if part in self.from_runtime:
            pid = (self.runtime or {}).get("pid")
            return runtime_origin(state_path(self.state_dir), pid, self._env(name))
        return setting_origin(self._env(name))

    def _env(self, name: str) -> str:
        return env_name(type(self.settings), name)

    def runtime_shares_kafka(self) -> bool:
        """The running local runtime consumes from the Kafka these settings name (so its
        control port can pause those consumer groups)."""
        return bool(self.runtime and self.runtime.get("kafka_bootstrap")
                    == self.settings.kafka_bootstrap_servers)

    def control(self) -> ControlClient | None:
        control = (self.runtime or {}).get("control")
        if not isinstance(control, dict) or not control.get("url"):
            return None
        return ControlClient(str(control["url"]), str(control.get("token", "")))

    def source(self, name: str) -> KafkaSourceSpec:
        spec = self.manifests.kafka_sources.get(name)
        if spec is None:
            known = ", ".join(sorted(self.manifests.kafka_sources)) or "none"
            raise OpsError(f"no KafkaSource named {name!r} in kafka-sources/; the sources "
                           f"are: {known}")
        return spec


def resolve(settings: LocalSettings, root: Path = REPO_ROOT) -> OpsContext:
    state_dir = settings.state_dir if settings.state_dir.is_absolute() else (
        root / settings.state_dir)
    runtime = running_runtime(state_dir)
    update: dict[str, Any] = {"state_dir": state_dir}
    from_runtime: set[str] = set()
    if runtime is not None:
        if not settings.kafka_bootstrap_servers and runtime.get("kafka_bootstrap"):
            update["kafka_bootstrap_servers"] = runtime["kafka_bootstrap"]
            update["kafka_broker_kind"] = runtime_broker_kind(runtime)
            from_runtime.add("kafka")
        url = runtime.get("database_url")
        # The state file masks a password; an embedded database has none (trust auth).
        if settings.database_url is None and isinstance(url, str) and "***" not in url:
            update["database_url"] = SecretStr(url)
            from_runtime.add("database")
    try:
        manifests = load_project_manifests(root)
    except ManifestError as exc:
        raise OpsError(f"the manifests do not load: {exc}") from None
    return OpsContext(settings.model_copy(update=update), state_dir, runtime, manifests,
                      frozenset(from_runtime))


def runtime_broker_kind(runtime: dict[str, Any]) -> KafkaBrokerKind:
    """The kind of broker a runtime-state.json says its runtime talks to."""
    return "tansu" if runtime.get("kafka_broker_kind") == "tansu" else "kafka"


def running_runtime(state_dir: Path) -> dict[str, Any] | None:
    """runtime-state.json, if the runtime that wrote it is still running."""
    state = read_state(state_dir)
    if state is None or state.get("phase") not in ("starting", "running"):
        return None
    pid = state.get("pid")
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # it died without saying so (SIGKILL)
    except PermissionError:
        pass  # alive, another user's
    return state
