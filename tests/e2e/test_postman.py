"""The Postman collection (postman/) run by newman against the session's stack, as a person
who imported it runs it: it signs up its own customers, fills its own wallet and orders.
newman's exit code must be 0, and every pm.test the collection declares must have run and
passed (its JSON report). newman is pinned in postman/package-lock.json and installed with
`npm ci` when postman/node_modules lacks that version; Node.js with npm must be on PATH
(installed with apt-get where it can be)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LocalStack
from tools import REPO_ROOT
from tools.infra.apt import apt_install

pytestmark = pytest.mark.e2e

POSTMAN = REPO_ROOT / "postman"
COLLECTION = POSTMAN / "order-saga.postman_collection.json"
ENVIRONMENT = POSTMAN / "local.postman_environment.json"
NPM_CI_TIMEOUT_S = 600
NEWMAN_TIMEOUT_S = 300
_PM_TEST = re.compile(r"""pm\.test\((['"])(.+?)\1""")


def _pinned_newman() -> str:
    lock = json.loads((POSTMAN / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/newman"]["version"])


def _installed_newman() -> str | None:
    try:
        installed = json.loads((POSTMAN / "node_modules/newman/package.json").read_text())
    except (OSError, ValueError):
        return None
    return str(installed.get("version"))


def newman() -> Path:
    """postman/node_modules/.bin/newman at the pinned version, installed by `npm ci`."""
    binary = POSTMAN / "node_modules" / ".bin" / "newman"
    if _installed_newman() == _pinned_newman() and binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        why = apt_install("nodejs", "npm")
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"the Postman collection runs on newman, which needs Node.js and npm:"
                        f" install them (apt-get install nodejs npm; apt-get: {why})",
                        pytrace=False)
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=POSTMAN,
                          capture_output=True, text=True, timeout=NPM_CI_TIMEOUT_S, check=False)
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return binary


def declared_tests(collection: dict[str, Any]) -> set[str]:
    """The name of every pm.test in the collection's scripts."""
    names: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        for event in node.get("event", []):
            names.update(m.group(2) for line in event["script"]["exec"]
                         for m in _PM_TEST.finditer(line))
        for child in node.get("item", []):
            walk(child)

    walk(collection)
    return names


def test_the_postman_collection_passes_against_a_running_stack(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    report = tmp_path / "newman.json"
    done = subprocess.run(
        [str(newman()), "run", str(COLLECTION), "--environment", str(ENVIRONMENT),
         "--env-var", f"baseUrl={local_stack.api_url}", "--reporters", "cli,json",
         "--reporter-json-export", str(report), "--color", "off", "--timeout-request", "10000"],
        cwd=POSTMAN, capture_output=True, text=True, timeout=NEWMAN_TIMEOUT_S, check=False,
    )
    print(done.stdout)  # newman's own report in the test report
    assert done.returncode == 0, f"newman failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    run = json.loads(report.read_text())["run"]
    assert run["failures"] == [], run["failures"]
    assertions = run["stats"]["assertions"]
    declared = declared_tests(json.loads(COLLECTION.read_text()))
    assert len(declared) >= 30, declared  # the collection's scripts were read at all
    assert assertions["failed"] == 0 and assertions["total"] > len(declared), assertions
    ran = {a["assertion"] for execution in run["executions"]
           for a in execution.get("assertions", [])}
    assert declared - ran == set(), "tests of the collection that never ran"
