"""Apache Kafka 4 in KRaft mode (one process, broker and controller) as our child process,
its log directories on disk, so a restart keeps topics, records and committed offsets.
`home` (<state dir>/kafka) holds `data/` (formatted once; meta.properties keeps the cluster
id) and the current run's server.properties; both ports are picked free at every start.
Sized for a 2-core machine shared with the stack (docs/architecture.md, "Two brokers"); no
topic is created on a client's request (the runtime creates them as kafka-sources/topics/
says). Stopped with SIGTERM (an orderly shutdown), then SIGKILL; started through `setpriv
--pdeathsig KILL`, so a SIGKILLed parent leaves no JVM behind."""

from __future__ import annotations

import base64
import fcntl
import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from tools.infra import ports
from tools.infra.kafka_dist import LOG4J_CONFIG, KafkaDist, ensure_dist
from tools.infra.ports import LOOPBACK, log_size, log_tail
from tools.infra.server import BrokerServer, ServerError, StopSteps

logger = logging.getLogger(__name__)

# The JVM's sizing (docs/architecture.md, "Two brokers", has the figures and commands).
# KAFKA_HEAP_OPTS and KAFKA_JVM_PERFORMANCE_OPTS, the names Kafka's own scripts read,
# replace them when set.
HEAP_OPTIONS = ("-Xms64m", "-Xmx256m")
PERFORMANCE_OPTIONS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                       "-XX:MaxMetaspaceSize=128m", "-XX:ReservedCodeCacheSize=48m", "-Xss512k")
JVM_OPTIONS = (
    "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
    # Kafka logs during its own shutdown hook; log4j's hook would close the appenders first.
    "-Dlog4j2.shutdownHookEnabled=false",
)
BROKER_CONFIG = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "auto.create.topics.enable": "false",
    # One node: every internal topic with one replica, and one partition where the
    # default (50) would cost a file set per partition for nothing.
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "share.coordinator.state.topic.num.partitions": "1",
    # A consumer group gets its partitions at once (the default waits 3 s for more members;
    # each KafkaSource is one member of its own group).
    "group.initial.rebalance.delay.ms": "0",
    # Threads for a 2-core machine (defaults: 3 network, 8 IO, 10 background, 1 cleaner
    # with a 128 MB dedupe buffer, which would take half the heap).
    "num.network.threads": "1",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "num.replica.fetchers": "1",
    "group.coordinator.threads": "1",
    "share.coordinator.threads": "1",
    "log.cleaner.threads": "1",
    "log.cleaner.dedupe.buffer.size": str(8 * 2**20),
}
_STOP_GRACE_S = 30.0  # controlled shutdown; measured ~2.4 s on an idle machine


class KafkaServerError(ServerError):
    """The embedded Apache Kafka could not be prepared or started."""


def new_cluster_id() -> str:
    """A cluster id as `kafka-storage random-uuid` makes: 16 random bytes, URL-safe base64
    without padding, never starting with '-' (a command line would take it for an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


class KafkaServer(BrokerServer):
    """One Apache Kafka node in `home` (see the module docstring).

    `advertised_port`: the port clients are told to connect to, when they reach the broker
    through something else (the chaos tool's proxy); by default its own port. `config`: more
    server properties, over BROKER_CONFIG (a test's broker that checks retention often).
    """

    what = "embedded Apache Kafka"
    error = KafkaServerError

    def __init__(self, home: Path, port: int | None = None, log_path: Path | None = None, *,
                 advertised_port: int | None = None, die_with_parent: bool = True,
                 config: Mapping[str, str] | None = None) -> None:
        self.home = Path(home).absolute()
        self._config = dict(config or {})
        super().__init__(port, log_path or self.home.with_suffix(".log"))
        self._advertised_port = advertised_port
        self._die_with_parent = die_with_parent
        self._dist: KafkaDist | None = None
        self._lock: int | None = None

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def cluster_id(self) -> str | None:
        """The id the data dir was formatted with (None before the first start)."""
        try:
            text = (self.data_dir / "meta.properties").read_text()
        except FileNotFoundError:
            return None
        found = [line.split("=", 1)[1].strip() for line in text.splitlines()
                 if line.startswith("cluster.id=")]
        return found[0] if found else None

    # --- ChildServer ----------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> str:
        """Start Kafka (the jars fetched first if missing) and wait until it answers;
        its bootstrap address. A JVM on a busy 2-core machine may take tens of seconds."""
        return super().start(timeout)

    def _install(self) -> None:
        if self._dist is None:
            self._dist = ensure_dist()

    def _prepare(self, deadline: float) -> bool:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        if self.cluster_id is None:
            self._format(deadline)
        return False

    def _spawn_broker(self, port: int) -> int:
        assert self._dist is not None
        controller = ports.free_port()
        config = self.home / "server.properties"
        config.write_text(_properties(BROKER_CONFIG | self._config | {
            "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self._advertised_port or port}",
            "controller.quorum.voters": f"1@{LOOPBACK}:{controller}",
            "log.dirs": str(self.data_dir),
        }))
        return self._launch(self._java("kafka.Kafka", str(config)), port=port,
                            env=_child_env(), die_with_parent=self._die_with_parent,
                            cwd=self.home)

    def _stop_steps(self, timeout: float | None) -> StopSteps:
        return [(signal.SIGTERM, _STOP_GRACE_S if timeout is None else timeout)]

    def _stopped(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # --- helpers --------------------------------------------------------------------------

    def _java(self, main: str, *args: str) -> list[str]:
        assert self._dist is not None
        heap = os.environ.get("KAFKA_HEAP_OPTS", "").split() or HEAP_OPTIONS
        tuning = os.environ.get("KAFKA_JVM_PERFORMANCE_OPTS", "").split() or PERFORMANCE_OPTIONS
        return [self._dist.java, *heap, *tuning, *JVM_OPTIONS,
                f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", self._dist.classpath,
                main, *args]

    def _take_lock(self) -> None:
        """Refuse a data dir another Kafka is using (Kafka would fail on its .lock with a
        stack trace); we hold our own lock on a sibling file while we run."""
        if self._lock is not None:
            return
        fd = os.open(self.home / "owner.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise KafkaServerError(
                f"another Apache Kafka is running on {self.data_dir} (another `./taskw up` "
                f"with the same SAGA_STATE_DIR?): stop it, or give this one its own "
                f"SAGA_STATE_DIR") from None
        self._lock = fd

    def _format(self, deadline: float) -> None:
        """kafka-storage format, once: a new cluster id and the bootstrap metadata."""
        config = self.home / "format.properties"
        config.write_text(_properties(BROKER_CONFIG | self._config | {
            "listeners": f"PLAINTEXT://{LOOPBACK}:9092,CONTROLLER://{LOOPBACK}:9093",
            "controller.quorum.voters": f"1@{LOOPBACK}:9093",
            "log.dirs": str(self.data_dir),
        }))
        assert self._log_path is not None
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        started_at, began = log_size(self._log_path), time.monotonic()
        command = self._java("kafka.tools.StorageTool", "format", "--cluster-id",
                             new_cluster_id(), "--config", str(config), "--ignore-formatted")
        with self._log_path.open("ab") as log:
            try:
                done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, env=_child_env(),
                                      timeout=max(deadline - time.monotonic(), 1.0),
                                      check=False, cwd=self.home)
            except subprocess.TimeoutExpired:
                raise KafkaServerError(f"formatting {self.data_dir} timed out\n"
                                       f"{log_tail(self._log_path, start=started_at)}") from None
        if done.returncode != 0 or self.cluster_id is None:
            raise KafkaServerError(f"formatting {self.data_dir} failed (exit code "
                                   f"{done.returncode})\n"
                                   f"{log_tail(self._log_path, start=started_at)}")
        config.unlink()
        logger.info("embedded Apache Kafka: formatted %s (cluster %s) in %.2fs",
                    self.data_dir, self.cluster_id, time.monotonic() - began)


def _properties(values: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def _child_env() -> dict[str, str]:
    """Our environment minus what Kafka's classes or the JVM would pick up behind our
    command line (KAFKA_OPTS and friends are read by Kafka's shell scripts only, but
    JAVA_TOOL_OPTIONS and _JAVA_OPTIONS by every JVM)."""
    dropped = ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH")
    return {k: v for k, v in os.environ.items() if k not in dropped}
