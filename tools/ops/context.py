"""Where an operator command finds things: the settings (environment), or, for what they
leave unset, the local runtime running in the state dir (runtime-state.json); and the
project's manifests (KafkaSource names -> consumer groups and topics).

Explicit settings win: with KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL set, commands talk to
those (a cluster's Kafka through a port-forward, say) even while `saga up` runs here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from common.settings import KafkaBrokerKind, Settings
from tools import REPO_ROOT
from tools.runtime.control import ControlClient
from tools.runtime.manifests import ManifestError, load_project_manifests
from tools.runtime.specs import KafkaSourceSpec, Manifests
from tools.runtime.state import read_state


class OpsError(Exception):
    """A problem the operator can fix; the message says how."""


@dataclass(frozen=True)
class OpsContext:
    settings: Settings  # database and Kafka filled in from the runtime where unset
    state_dir: Path
    runtime: dict[str, Any] | None  # runtime-state.json of a runtime that is running
    manifests: Manifests

    @property
    def log_dir(self) -> Path:
        if self.runtime and self.runtime.get("log_dir"):
            return Path(self.runtime["log_dir"])
        return self.state_dir / "logs"

    def require_kafka(self) -> Settings:
        if not self.settings.kafka_bootstrap_servers:
            raise OpsError("no Kafka to talk to: start the local runtime (`./taskw up`) or "
                           "set KAFKA_BOOTSTRAP_SERVERS=host:9092")
        return self.settings

    def require_database(self) -> Settings:
        if self.settings.database_url is None:
            raise OpsError("no database to talk to: start the local runtime (`./taskw up`) "
                           "or set DATABASE_URL=postgresql://user@host:5432/db")
        return self.settings

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


def resolve(settings: Settings, root: Path = REPO_ROOT) -> OpsContext:
    state_dir = settings.state_dir if settings.state_dir.is_absolute() else (
        root / settings.state_dir)
    runtime = running_runtime(state_dir)
    update: dict[str, Any] = {"state_dir": state_dir}
    if runtime is not None:
        if not settings.kafka_bootstrap_servers and runtime.get("kafka_bootstrap"):
            update["kafka_bootstrap_servers"] = runtime["kafka_bootstrap"]
            update["kafka_broker_kind"] = runtime_broker_kind(runtime)
        url = runtime.get("database_url")
        # The state file masks a password; an embedded database has none (trust auth).
        if settings.database_url is None and isinstance(url, str) and "***" not in url:
            update["database_url"] = SecretStr(url)
    try:
        manifests = load_project_manifests(root)
    except ManifestError as exc:
        raise OpsError(f"the manifests do not load: {exc}") from None
    return OpsContext(settings.model_copy(update=update), state_dir, runtime, manifests)


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
