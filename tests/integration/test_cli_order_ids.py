"""`saga trace` takes the short id the tools print (tools/ops/orders.py): any unique prefix
of 6 or more characters, through the real CLI in a subprocess, on a database of its own
holding orders whose ids share a prefix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, pool

from common import tables as t
from common.migrate import upgrade
from common.settings import to_sqlalchemy_url
from tools import REPO_ROOT

CLEARED = ("DATABASE_URL", "SAGA_DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS",
           "SAGA_KAFKA_BOOTSTRAP_SERVERS", "SAGA_STATE_DIR")


@pytest.fixture(scope="module")
def twins(fresh_database: Callable[[str], str]) -> tuple[str, list[str]]:
    """(database URL, [two order ids sharing their first 8 characters])."""
    url = fresh_database("order_ids")
    upgrade(url)
    shared = uuid.uuid4().hex[:8]
    ids = [str(uuid.UUID(shared + tail + uuid.uuid4().hex[:22])) for tail in ("01", "02")]
    engine = create_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            for order_id in ids:
                conn.execute(insert(t.orders).values(
                    id=order_id, customer_id="twin", status="CREATED", payment_mode="auto",
                    total=0))
                conn.execute(insert(t.order_status_history).values(
                    order_id=order_id, to_status="CREATED", actor="customer:twin"))
    finally:
        engine.dispose()
    return url, ids


def trace(url: str, state_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED} | {
        "DATABASE_URL": url, "SAGA_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "tools.cli.main", "trace", *argv],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_short_id_the_tools_print_is_taken(twins: tuple[str, list[str]],
                                               tmp_path: Path) -> None:
    url, (first, _) = twins
    for typed in (first[:11], first[:13].upper(), first.replace("-", "")):
        done = trace(url, tmp_path, typed)
        assert done.returncode == 0, done
        assert done.stdout.startswith(f"order {first}: 1 entry in"), done
        assert "CREATED" in done.stdout
    done = trace(url, tmp_path, first[:11], "--json")
    assert [e["what"] for e in json.loads(done.stdout)] == ["status new -> CREATED"]


def test_an_ambiguous_prefix_lists_the_matches(twins: tuple[str, list[str]],
                                               tmp_path: Path) -> None:
    url, ids = twins
    done = trace(url, tmp_path, ids[0][:8])
    assert (done.returncode, done.stdout) == (2, ""), done
    assert done.stderr == (f"saga trace: {ids[0][:8]} is the start of several order ids "
                           f"({ids[0]}, {ids[1]}): give more characters\n")


def test_a_prefix_nothing_has(twins: tuple[str, list[str]], tmp_path: Path) -> None:
    url, _ = twins
    unknown = uuid.uuid4().hex[:12]
    done = trace(url, tmp_path, unknown)
    assert (done.returncode, done.stderr) == (
        1, f"saga trace: no order id starts with {unknown}\n"), done


def test_fewer_than_six_characters_is_bad_usage(twins: tuple[str, list[str]],
                                                tmp_path: Path) -> None:
    url, ids = twins
    done = trace(url, tmp_path, ids[0][:5])
    assert done.returncode == 2, done
    assert "too short for an order id prefix: give at least 6 characters" in done.stderr
