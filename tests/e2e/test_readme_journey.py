"""README.md's "Quick start" and "Place an order", then docs/operations.md's commands, run
the way a person runs them, so that the docs cannot rot (markers: tests/doc_blocks.py).

- The stack is the Quick start's `up` block of the session's broker: `./taskw up` on Tansu,
  `./taskw up -- --broker kafka` on the Kafka tier; its first line typed into bash in the
  project's folder, in the background until healthy, then Ctrl-C. The block's other line,
  `./taskw test`, is not run: it is this very suite.
- State in a temporary SAGA_STATE_DIR, never the developer's .local; the embedded database a
  fresh clone gets (where DATABASE_URL names a server, as in CI: a fresh database on it).
- The API and the console on free ports (SAGA_API_PORT, SAGA_CONSOLE_PORT: 8080 and 8081
  may be taken, and tests never listen on a fixed port): `localhost:8080` and
  `localhost:8081` in the blocks become them, the one change to their text.
- The `run` blocks of README.md, then of docs/operations.md, pasted in order into one shell
  (variables carry over, as in one terminal): `sh` on the Tansu tier, `bash` on the Kafka
  tier, the two a reader may have; with `set -e` and a terminal's PATH (without the
  .venv/bin that ./taskw test puts first).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import session_broker_kind, world_traversable_tmp
from tests.doc_blocks import Block, blocks
from tests.e2e.conftest import running_stack
from tools import REPO_ROOT
from tools.infra.ports import free_port

pytestmark = pytest.mark.e2e

README_SECTIONS = ("Quick start", "Place an order")
BLOCK_START = "@@doc-block"
SHELL_TIMEOUT_S = 240
SHELL_OF_TIER = {"tansu": "sh", "kafka": "bash"}


@dataclass(frozen=True)
class Walk:
    """What the pasted blocks printed: stdout of each block, by its Block."""

    outputs: dict[Block, str]

    def of(self, doc: str, section: str) -> str:
        return "".join(out for b, out in self.outputs.items()
                       if b.doc == doc and b.section == section)


def _terminal_env(state_dir: Path, port: int, console_port: int,
                  database_url: str | None) -> dict[str, str]:
    """The environment of the person's terminals: this one's, less what pytest and
    ./taskw test add (the .venv on PATH, the session's SAGA_BROKER: the command decides)."""
    venv_bin = str(Path(sys.prefix) / "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "SAGA_BROKER")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and p != venv_bin)
    env |= {"SAGA_STATE_DIR": str(state_dir), "SAGA_API_PORT": str(port),
            "SAGA_CONSOLE_PORT": str(console_port)}
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def _script(pasted: list[Block], port: int, console_port: int) -> str:
    lines = ["set -e"]
    for block in pasted:
        lines.append(f"printf '\\n{BLOCK_START} %s\\n' '{block.where}'")
        lines.append(block.runnable().replace("localhost:8080", f"localhost:{port}")
                     .replace("localhost:8081", f"localhost:{console_port}"))
    lines.append(f"printf '\\n{BLOCK_START} end\\n'")
    return "\n".join(lines) + "\n"


def _split(stdout: str, pasted: list[Block]) -> dict[Block, str]:
    by_where = {b.where: b for b in pasted}
    outputs: dict[Block, str] = {}
    current: Block | None = None
    for line in stdout.splitlines(keepends=True):
        if line.startswith(BLOCK_START + " "):
            current = by_where.get(line.split(" ", 1)[1].strip())
            if current is not None:
                outputs[current] = ""
        elif current is not None:
            outputs[current] += line
    return outputs


def json_documents(text: str) -> list[Any]:
    """Every JSON value printed at the start of a line, in order (other lines skipped)."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    position = 0
    while position < len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end + 1
        if text[position] in "{[":
            try:
                value, parsed_to = decoder.raw_decode(text, position)
            except json.JSONDecodeError:
                pass
            else:
                found.append(value)
                end = max(end, parsed_to)
        position = end
    return found


@pytest.fixture(scope="module")
def walk(request: pytest.FixtureRequest) -> Iterator[Walk]:
    broker = "kafka" if session_broker_kind() == "kafka" else "tansu"
    readme = blocks(REPO_ROOT / "README.md", README_SECTIONS)
    operations = blocks(REPO_ROOT / "docs" / "operations.md")
    problems = [p for b in readme + operations if (p := b.problem())]
    assert not problems, "\n".join(problems)
    (up,) = [b for b in readme if b.mode == "up" and b.args == broker]
    pasted = [b for b in readme + operations if b.mode == "run"]
    database_url = None
    if os.environ.get("DATABASE_URL"):  # a shared server: a database of the test's own
        fresh_database: Callable[[str], str] = request.getfixturevalue("fresh_database")
        database_url = fresh_database("readme")
    with world_traversable_tmp("saga-readme-") as state_dir:
        port, console_port = free_port(), free_port()
        env = _terminal_env(state_dir, port, console_port, database_url)
        with running_stack(["bash", "-c", up.lines[0]], env, state_dir,
                           f"http://127.0.0.1:{port}", ctrl_c_group=True) as (_, console):
            script = state_dir / "pasted.sh"
            script.write_text(_script(pasted, port, console_port))
            done = subprocess.run(
                [SHELL_OF_TIER[broker], str(script)], cwd=REPO_ROOT, env=env,
                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=SHELL_TIMEOUT_S, check=False,
            )
            print(done.stdout)  # the whole transcript in the test report
            print(done.stderr, file=sys.stderr)
            outputs = _split(done.stdout, pasted)
            failed = next((b for b in reversed(pasted) if b in outputs), None)
            assert done.returncode == 0 and f"{BLOCK_START} end" in done.stdout, (
                f"the shell stopped with exit code {done.returncode} in the block at "
                f"{failed.where if failed else '?'}:\n{failed.runnable() if failed else ''}"
                f"\n--- stderr ---\n{done.stderr[-3000:]}\n--- the stack's console ---\n"
                + "\n".join(console.read_text(errors="replace").splitlines()[-30:]))
            yield Walk(outputs)


def test_the_readme_places_an_order_that_completes_and_takes_stock(walk: Walk) -> None:
    printed = json_documents(walk.of("README.md", "Place an order"))
    (order,) = [d for d in printed if isinstance(d, dict) and "timeline" in d]
    assert (order["status"], order["reason"]) == ("COMPLETED", None), order
    assert [t["to_status"] for t in order["timeline"]][-1] == "COMPLETED"
    catalogues = [{p["sku"]: p["available"] for p in d["items"]}
                  for d in printed if isinstance(d, dict) and "next_cursor" in d]
    assert len(catalogues) == 2, printed  # before and after the order
    (line,) = order["items"]
    before, after = catalogues
    assert after[line["sku"]] == before[line["sku"]] - line["quantity"], (before, after)
    wallets = [d for d in printed if isinstance(d, dict) and "balance" in d]
    assert wallets and wallets[-1]["balance"] == "100.00", wallets  # the deposit's answer


def test_the_operations_commands_answer_about_that_order(walk: Walk) -> None:
    (order,) = [d for d in json_documents(walk.of("README.md", "Place an order"))
                if isinstance(d, dict) and "timeline" in d]
    ops = "operations.md"
    (status,) = [d for d in json_documents(walk.of(ops, "saga status"))
                 if isinstance(d, dict) and "functions" in d]
    states = {f["name"]: f["state"] for f in status["functions"]}
    assert states.get("api") == "running", states
    assert set(states.values()) <= {"running", "scaled_to_zero", "not_started"}, states
    assert status["dead_letters"] == 0 and status["outbox"]["unpublished"] is not None
    partitions = [p for source in status["sources"] for p in source["partitions"]]
    assert partitions and all(isinstance(p["lag"], int) for p in partitions), status

    trace = walk.of(ops, "saga trace")
    assert order["id"] in trace and "-> COMPLETED" in trace, trace
    replay = walk.of(ops, "saga replay")
    assert "saga-inventory" in replay and "dry run" in replay, replay
    assert walk.of(ops, "saga dlq").strip(), "saga dlq list printed nothing"
    retention = walk.of(ops, "Retention: what the growing tables keep")
    assert "row(s) would delete" in retention and '"dry_run": 0' in retention, retention


def test_the_consoles_api_answers_about_that_order_as_curl_asks(walk: Walk) -> None:
    (order,) = [d for d in json_documents(walk.of("README.md", "Place an order"))
                if isinstance(d, dict) and "timeline" in d]
    printed = json_documents(walk.of("operations.md", "The console"))
    (overview,) = [d for d in printed if isinstance(d, dict) and "by_status" in d]
    assert overview["by_status"]["COMPLETED"] >= 1 and overview["dead_letters_waiting"] == 0
    (found,) = [d for d in printed if isinstance(d, dict) and "items" in d]
    assert order["id"] in [o["id"] for o in found["items"]], found
    (refused,) = [d for d in printed if isinstance(d, dict) and d.get("status") == 409]
    assert "the order is COMPLETED" in refused["detail"], refused
