"""A dead letter's states (waiting, re-driven, resolved) on a database of its own, through
the `saga` CLI in-process: `saga dlq list`, `saga status` and `saga check` count the same
letters as waiting; re-driving a handled letter is refused, naming why and `--force`;
`saga dlq` alone lists. None of it needs a broker: refusals come before any sending."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, insert, pool

from common import tables as t
from common.migrate import upgrade
from common.settings import to_sqlalchemy_url
from tests.helpers import run_saga

pytestmark = pytest.mark.integration


@pytest.fixture
def letters(fresh_database: Callable[[str], str], tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """One letter in each state, and a second failure of the re-driven one; their ids."""
    url = fresh_database("dlq_states")
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("SAGA_STATE_DIR", str(tmp_path))  # no local runtime there
    engine = create_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)

    def letter(event_id: str, attributes: dict[str, str] | None = None,
               **fields: object) -> int:
        attributes = {"id": event_id, "type": "shop.order.created.v1", "source": "/saga/api",
                      "partitionkey": "o-1"} | (attributes or {})
        row = {"event_id": event_id, "event_type": "shop.order.created.v1",
               "source": "/saga/api", "subject": "o-1", "attributes": attributes,
               "data": b'{"order_id": "o-1"}', "error_dest": "http://inventory.saga"} | fields
        with engine.begin() as conn:
            return int(conn.execute(insert(t.dead_letters).values(**row)
                                    .returning(t.dead_letters.c.id)).scalar_one())

    try:
        # Stored when the re-drive mark was a bare count: still an ordinary letter.
        ids = {"waiting": letter("e-waiting", attributes={"sagaredrive": "1"})}
        ids["redriven"] = letter("e-redriven", redriven_at=func.now(), redrive_count=1)
        ids["failed_again"] = letter("e-redriven", attributes={
            "sagaredrive": f"{ids['redriven']}.1"})
        ids["resolved"] = letter("e-resolved", resolved=True)
        ids["redriven_resolved"] = letter("e-both", redriven_at=func.now(), redrive_count=1,
                                          resolved=True)
        yield ids
    finally:
        engine.dispose()




def test_list_status_and_check_count_the_same_letters_waiting(letters: dict[str, int]) -> None:
    code, out, err = run_saga("dlq", "list", "--json")
    assert code == 0, err
    listed = sorted(item["id"] for item in json.loads(out))
    assert listed == sorted([letters["waiting"], letters["failed_again"]])

    code, out, err = run_saga("status", "--json")
    assert code == 0, err
    assert json.loads(out)["dead_letters"] == len(listed)

    code, out, err = run_saga("check", "--json")
    report = json.loads(out)
    [dead] = [v for v in report["violations"] if v["invariant"] == "dead_letters"]
    assert dead["count"] == len(listed)
    assert sorted(r["id"] for r in dead["rows"]) == listed
    code, out, _ = run_saga("check", "--json", "--expect-dead-letters", str(len(listed)))
    assert "dead_letters" not in {v["invariant"] for v in json.loads(out)["violations"]}

    code, everything, _ = run_saga("dlq", "list", "--all", "--json")
    states = {item["id"]: (item["state"], item["redrive_of"]) for item in json.loads(everything)}
    assert states == {letters["waiting"]: ("waiting", None),
                      letters["redriven"]: ("redriven", None),
                      letters["failed_again"]: ("waiting", letters["redriven"]),
                      letters["resolved"]: ("resolved", None),
                      letters["redriven_resolved"]: ("resolved", None)}


def test_dlq_without_an_action_lists(letters: dict[str, int]) -> None:
    code, alone, _ = run_saga("dlq")
    assert code == 0
    assert alone == run_saga("dlq", "list")[1]
    assert f"{letters['failed_again']:>5}" in alone and "re-driving" in alone


def test_a_handled_letter_is_not_redriven_unless_forced(letters: dict[str, int]) -> None:
    resolved, redriven = letters["resolved"], letters["redriven"]
    code, _, err = run_saga("dlq", "redrive", str(resolved))
    assert code == 2
    assert f"dead letter {resolved} is resolved" in err
    assert f"saga dlq redrive {resolved} --force" in err

    code, _, err = run_saga("dlq", "redrive", str(redriven))
    assert code == 2
    assert f"dead letter {redriven} was re-driven already" in err
    assert f"failed again as dead letter {letters['failed_again']}" in err
    assert "--force" in err

    # Refused as a whole: the waiting letter given with them was not sent either.
    code, _, err = run_saga("dlq", "redrive", str(letters["waiting"]), str(resolved))
    assert code == 2 and "nothing was re-driven" in err
    code, _, err = run_saga("dlq", "redrive", "--all", "--force")
    assert code == 2 and "--force needs the letters' ids" in err

    code, out, _ = run_saga("dlq", "show", str(redriven))
    assert json.loads(out)["failed_again_as"] == [letters["failed_again"]]
    # Nothing changed state.
    code, out, _ = run_saga("dlq", "list", "--json")
    assert sorted(item["id"] for item in json.loads(out)) == sorted(
        [letters["waiting"], letters["failed_again"]])
