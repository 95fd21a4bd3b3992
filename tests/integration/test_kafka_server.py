"""The Apache Kafka launcher (tools/infra/apache_kafka.py) with real JVMs: formatted once and
durable across restarts (topics, records, committed offsets, cluster id), stopped cleanly
with nothing left (no process, no port), refusing a second server on its data, and dying
with a parent that was SIGKILLed. Runs in the Kafka tier (pytest --broker kafka)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psutil
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # ConfigResource: re-exported
    AdminClient,
    ConfigResource,
)
from confluent_kafka.cimpl import NewTopic

from tests.helpers import wait_for
from tools import REPO_ROOT
from tools.infra.apache_kafka import KafkaServer, KafkaServerError
from tools.infra.ports import port_is_free

pytestmark = [pytest.mark.integration, pytest.mark.kafka_only]



def _ports(server: KafkaServer) -> list[int]:
    """The client and controller ports of the running server (its server.properties)."""
    listeners = next(line for line in (server.home / "server.properties").read_text()
                     .splitlines() if line.startswith("listeners="))
    return [int(part.rsplit(":", 1)[1]) for part in listeners.split("=", 1)[1].split(",")]


def _family(pid: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


# What a partition answers while a restarted broker loads its logs and elects its leader.
ELECTING = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
            KafkaError.UNKNOWN_TOPIC_OR_PART}


def test_kafka_is_durable_across_restarts_and_stops_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "kafka.log"
    topic, group = f"durable-{uuid.uuid4().hex[:8]}", "durable-group"
    with KafkaServer(tmp_path / "kafka", log_path=log) as server:
        cluster, pid, ports = server.cluster_id, server.pid, _ports(server)
        assert cluster and pid is not None
        admin = AdminClient({"bootstrap.servers": server.bootstrap})
        admin.create_topics([NewTopic(topic, 2, 1, config={"retention.ms": "3600000"})])[
            topic].result(30)
        producer = Producer({"bootstrap.servers": server.bootstrap, "enable.idempotence": True})
        for n in range(10):
            producer.produce(topic, str(n).encode(), key=str(n % 2).encode())
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": server.bootstrap, "group.id": group,
                             "enable.auto.commit": False})
        consumer.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 1)],
                        asynchronous=False)
        consumer.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert all(port_is_free(port) for port in ports)
    first_run = log.read_text()
    assert "Kafka Server started" in first_run and "Formatting metadata directory" in first_run

    with KafkaServer(tmp_path / "kafka", log_path=log) as again:
        assert again.cluster_id == cluster  # formatted once: the same cluster
        admin = AdminClient({"bootstrap.servers": again.bootstrap})
        described = admin.describe_configs([ConfigResource("topic", topic)])
        config = next(iter(described.values())).result(30)
        assert config["retention.ms"].value == "3600000"
        reader = Consumer({"bootstrap.servers": again.bootstrap, "group.id": group})

        def high_watermarks() -> list[int] | None:
            """None while a restarted broker still elects its partitions' leaders."""
            try:
                return [reader.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                        for p in (0, 1)]
            except KafkaException as exc:
                if exc.args[0].code() in ELECTING:
                    return None
                raise

        highs = wait_for(high_watermarks, timeout=30, message="the partitions' leaders")
        committed = reader.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=30)
        reader.close()
        assert sum(highs) == 10
        assert [tp.offset for tp in committed] == [3, 1]
    second_run = log.read_text()[len(first_run):]
    assert second_run.count("Formatting metadata directory") == 0
    # The first run stopped in order (SIGTERM): Kafka finds its clean-shutdown marker.
    assert "since clean shutdown file was found" in second_run
    assert "no clean shutdown file" not in second_run


def test_a_second_kafka_on_the_same_data_is_refused(tmp_path: Path) -> None:
    with KafkaServer(tmp_path / "kafka") as first:
        second = KafkaServer(tmp_path / "kafka")
        with pytest.raises(KafkaServerError, match="another Apache Kafka is running on"):
            second.start()
        assert first.pid is not None
        AdminClient({"bootstrap.servers": first.bootstrap}).list_topics(timeout=10)


def test_a_sigkilled_parent_leaves_no_jvm(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, threading
            from pathlib import Path
            from tools.infra.apache_kafka import KafkaServer
            server = KafkaServer(Path({str(tmp_path / "kafka")!r}))
            server.start()
            print(server.pid, server.port, flush=True)
            threading.Event().wait()  # until SIGKILLed
        """)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid, port = (int(x) for x in parent.stdout.readline().split())
        jvm = psutil.Process(pid)
        assert jvm.name() == "java" and jvm.ppid() == parent.pid
        parent.kill()
        parent.wait(10)
        wait_for(lambda: not _family(pid) or jvm.status() == psutil.STATUS_ZOMBIE, timeout=30,
                 message="the JVM to die with its parent")
        wait_for(lambda: port_is_free(port), timeout=30, message="its port to be free")
    finally:
        if parent.poll() is None:
            parent.kill()
