"""The chaos tool's faults do what they claim (the full `saga chaos` run is a measurement,
`task chaos`, not a CI test): the proxy cuts and restores a broker connection without the
broker losing its messages, and the killer SIGKILLs a whole process group."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from tests.conftest import session_broker_kind
from tests.helpers import wait_for
from tools.infra.ports import free_port
from tools.loadgen.faults import ChaosBroker, FaultLog, Killer
from tools.loadgen.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration


def _echo_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    return server, server.getsockname()[1]


def test_proxy_forwards_then_cuts_then_accepts_again() -> None:
    server, target = _echo_server()
    proxy = TcpProxy(free_port(), target)
    proxy.start()
    try:
        client = socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=5)
        upstream, _ = server.accept()
        client.sendall(b"ping")
        assert upstream.recv(4) == b"ping"

        started = time.monotonic()
        proxy.cut(0.5)  # returns once the proxy listens again
        assert time.monotonic() - started >= 0.5
        assert client.recv(1) == b""  # the cut closed our connection
        again = socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=5)
        upstream2, _ = server.accept()
        again.sendall(b"pong")
        assert upstream2.recv(4) == b"pong"
        for s in (client, upstream, again, upstream2):
            s.close()
    finally:
        proxy.stop()
        server.close()


def test_the_broker_keeps_its_messages_across_a_cut(tmp_path: Path) -> None:
    with ChaosBroker(tmp_path, session_broker_kind()) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})  # kept: futures need it
        admin.create_topics([NewTopic("chaos-t", 1, 1)])["chaos-t"].result(10)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 1})
        producer.produce("chaos-t", b"before the cut")
        assert producer.flush(10) == 0
        log = FaultLog()
        broker.cut(1.0, log)
        producer.produce("chaos-t", b"after the cut")
        assert producer.flush(30) == 0  # librdkafka reconnects through the proxy
        consumer = Consumer({"bootstrap.servers": broker.bootstrap,
                             "group.id": f"g-{uuid.uuid4()}", "auto.offset.reset": "earliest",
                             "fetch.wait.max.ms": 10})
        consumer.assign([TopicPartition("chaos-t", 0, 0)])
        seen: list[bytes] = []

        def both() -> bool:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                seen.append(msg.value() or b"")
            return len(seen) == 2

        wait_for(both, timeout=30, interval=0.01, message="both messages")
        consumer.close()
        assert seen == [b"before the cut", b"after the cut"]
        assert [line.split(" ", 1)[1] for line in log.as_list()] == [
            "broker connections cut for 1 s", "broker reachable again"]


def test_killer_sigkills_the_whole_process_group() -> None:
    # A parent with a child in its own session, like a gunicorn master and its worker.
    parent = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    try:
        log = FaultLog()
        killer = Killer(lambda: {"victim": parent.pid}, log, every_s=3600)
        assert killer.kill_one() == "victim"
        assert parent.wait(5) == -9
        assert killer.kills == {"victim": 1}
        assert "SIGKILL victim" in log.as_list()[0]
        wait_for(lambda: subprocess.run(["pgrep", "-g", str(parent.pid)], check=False,
                                        capture_output=True).returncode == 1,
                 timeout=5, message="the child to die with its group")
    finally:
        if parent.poll() is None:
            parent.kill()
