"""Can a command reach the broker and the database it was pointed at? One quick probe of
each, bounded in time, before any real client is made (librdkafka would otherwise retry a
closed port for its whole timeout and print each attempt). A failure is an `Unreachable`,
whose message is the one line a person reads: what, at which address, where that address
came from, why, and the fix (`origin` and `fix` are the caller's words, e.g.
"from KAFKA_BOOTSTRAP_SERVERS", "check it, or unset it to use ./taskw up")."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import psycopg
from confluent_kafka import KafkaException

from common.settings import Settings
from common.settings_errors import SettingsError
from tools.infra import mask_url
from tools.infra.kafka_clients import KafkaLogTally, admin_client

# Budgets per probe (a local broker or database answers in milliseconds; a cluster through
# a port-forward in well under a second): both down still answers well within 5 s.
KAFKA_PROBE_S = 3.0
DATABASE_PROBE_S = 2  # libpq's connect_timeout: whole seconds, 2 at least
_LOGIN_REFUSED = ("authentication", "password", "does not exist", "permission denied",
                  "no pg_hba.conf entry")


class Unreachable(Exception):
    """The broker or database a command needs does not answer (or refuses us); str() is
    the one line to print. A command's exit code for it is 1."""


def setting_origin(variable: str) -> tuple[str, str]:
    """(origin, fix) of an address a person set in `variable` (or an option named so)."""
    fix = f"check {variable}"
    if not variable.startswith("--"):
        fix += ", or unset it and start the local stack with ./taskw up"
    return f"from {variable}", fix


def runtime_origin(state_file: Path, pid: object, variable: str) -> tuple[str, str]:
    """(origin, fix) of an address read from the state file of a running ./taskw up."""
    return (f"from {state_file}, written by ./taskw up (pid {pid})",
            f"that stack is not answering: stop it and start it again with ./taskw up, or "
            f"set {variable}")


def check_kafka(settings: Settings, origin: str, fix: str,
                timeout: float = KAFKA_PROBE_S) -> None:
    """Return once the bootstrap servers answer a metadata request; else Unreachable."""
    servers = settings.kafka_bootstrap_servers or ""
    deadline = time.monotonic() + timeout
    reason = _tcp_reason(servers, deadline)
    if reason is None:
        logs = KafkaLogTally()
        probe = logging.Logger("saga.kafka.probe")  # its lines only explain its own failure
        probe.addHandler(logs)
        admin = admin_client(settings, logger=probe)
        try:
            admin.list_topics(timeout=max(0.1, deadline - time.monotonic()))
            return
        except KafkaException:
            admin.poll(0)  # serves librdkafka's queued log lines to `probe`
            reason = (f"it does not answer as a Kafka broker within {timeout:.0f} s"
                      + (f" ({logs.last})" if logs.last else ""))
    raise Unreachable(f"cannot reach Kafka at {servers} ({origin}): {reason}; {fix}")


def check_database(url: str, origin: str, fix: str, timeout: int = DATABASE_PROBE_S) -> None:
    """Return once PostgreSQL at `url` lets us in; else Unreachable (the password masked).
    Not a postgresql:// URL at all: SettingsError (libpq would echo it, password and all)."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    if not conninfo.startswith(("postgresql://", "postgres://")):
        raise SettingsError(f"{origin.removeprefix('from ')} (value hidden): must be a "
                            "postgresql:// URL, e.g. postgresql://user:password@host:5432/db")
    try:
        psycopg.connect(conninfo, connect_timeout=timeout).close()
        return
    except psycopg.Error as exc:
        reason = pg_reason(str(exc).replace(conninfo, mask_url(conninfo)))
    where = f"{mask_url(conninfo)} ({origin})"
    if any(word in reason.lower() for word in _LOGIN_REFUSED):
        raise Unreachable(f"the database at {where} refused us: {reason}; check the user, "
                          "password and database name in the URL") from None
    raise Unreachable(f"cannot reach the database at {where}: {reason}; {fix}") from None


def pg_reason(message: str) -> str:
    """libpq's reason out of psycopg's message: the text after the last "failed:" (several
    addresses, e.g. localhost's two, each add a line), without "FATAL:"."""
    reasons = [line.rsplit("failed:", 1)[1] for line in message.splitlines()
               if "failed:" in line]
    reason = (reasons[-1] if reasons else message.splitlines()[0] if message else "").strip()
    reason = " ".join(reason.removeprefix("FATAL:").split()) or "no reason given"
    return reason[:1].lower() + reason[1:]


def bootstrap_addresses(servers: str) -> list[tuple[str, int]]:
    """host:port pairs of a bootstrap.servers list (a PLAINTEXT:// prefix, [::1]:9092)."""
    found = []
    for listed in servers.split(","):
        item = listed.strip().rsplit("://", 1)[-1]
        if not item:
            continue
        host, _, port = item.rpartition(":") if item.rfind(":") > item.rfind("]") else (
            item, "", "9092")
        found.append((host.strip("[]") or "localhost", int(port) if port.isdigit() else 9092))
    return found


def _tcp_reason(servers: str, deadline: float) -> str | None:
    """None once one bootstrap address accepts a TCP connection; else why none did."""
    addresses = bootstrap_addresses(servers)
    if not addresses:
        return "no address in it"
    reasons = []
    for host, port in addresses:
        try:
            socket.create_connection((host, port), max(0.1, deadline - time.monotonic())).close()
            return None
        except ConnectionRefusedError:
            reasons.append("connection refused")
        except TimeoutError:
            reasons.append("no answer")
        except socket.gaierror:
            reasons.append(f"unknown host {host}")
        except OSError as exc:
            reasons.append(exc.strerror or type(exc).__name__)
    return ", ".join(dict.fromkeys(reasons))

