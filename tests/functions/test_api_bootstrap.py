"""The bootstrap Job's module against a real PostgreSQL, run as the Job runs it: the command
and the catalogue file of the rendered manifests (the ConfigMap's data where the Job mounts
it), in a process that can import only what the image holds. A fresh, migrated database
gets the catalogue and a first admin, who signs in through the api and creates a product;
a second run changes nothing; what it must not change (a password, a price, a registered
user) is reported and left alone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, pool, select

from common import tables as t
from common.migrate import upgrade
from common.settings import to_sqlalchemy_url
from functions.api.bootstrap import LOCK_KEY
from tests.contract.k8s_support import by_kind, rendered
from tests.contract.test_dockerfile import _not_in_the_image
from tests.functions.api_support import api_client, problem
from tests.helpers import close_function_resources, wait_for
from tools.log_contract import validate_line

pytestmark = pytest.mark.integration

ADMIN, PASSWORD = "ops", "first admin's secret 1"
JWT_SECRET = "bootstrap-test-" + "z" * 40

# `python -m MODULE ARGS` with every module the image lacks refused on import.
AS_IN_THE_IMAGE = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"{{name}} is not in the image", name=name)
sys.meta_path.insert(0, Block())
runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Run:
    code: int
    lines: list[dict[str, Any]]
    output: str

    def actions(self) -> list[str]:
        return [line.get("event", {}).get("action", "") for line in self.lines]

    def line(self, action: str) -> dict[str, Any]:
        return next(line for line in self.lines if line.get("event", {}).get("action") == action)


@dataclass(frozen=True)
class Job:
    """The bootstrap Job of the dev overlay: its module, its arguments with the mount path
    mapped to a folder holding the ConfigMap's files."""

    module: str
    args: list[str]
    catalogue: Path
    config: dict[str, str]  # the ConfigMaps of its envFrom (the Secrets are the test's)


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Job:
    docs = rendered("dev")
    spec = by_kind(docs, "batch", "Job")["saga-bootstrap"]["spec"]["template"]["spec"]
    [container] = spec["containers"]
    [mount] = container["volumeMounts"]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    files = by_kind(docs, "", "ConfigMap")[volume["configMap"]["name"]]["data"]
    folder = tmp_path_factory.mktemp("configmap")
    for key, value in files.items():
        (folder / key).write_text(value)
    argv = [arg.replace(mount["mountPath"], str(folder)) for arg in container["command"]]
    assert argv[:2] == ["python", "-m"], argv
    [catalogue] = [Path(a) for a in argv if a.startswith(str(folder))]
    config = {key: value for ref in container["envFrom"] if "configMapRef" in ref
              for key, value in by_kind(docs, "", "ConfigMap")[ref["configMapRef"]["name"]]
              ["data"].items()}
    return Job(argv[2], argv[3:], catalogue, config)


@pytest.fixture(scope="module")
def blocked() -> set[str]:
    return _not_in_the_image()


@pytest.fixture
def database(fresh_database: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[str]:
    """A fresh migrated database, which this process's api also uses."""
    url = fresh_database("bootstrap")
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SAGA_JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("SAGA_PROFILE", "production")
    yield url
    close_function_resources()


@dataclass(frozen=True)
class Runner:
    """Runs the Job's module as the Job runs it, on `database` unless told otherwise."""

    job: Job
    blocked: set[str]
    database: str
    cwd: Path

    def __call__(self, **kwargs: Any) -> Run:
        return self.finish(self.start(**kwargs))

    def start(self, *, args: list[str] | None = None,
              admin: tuple[str, str] | None = (ADMIN, PASSWORD),
              database_url: str | None = None, **env: str) -> subprocess.Popen[str]:
        environ = {**self.job.config, "PATH": "/usr/bin:/bin",
                   "PYTHONPATH": str(Path(__file__).parents[2]),
                   "DATABASE_URL": database_url or self.database,
                   "SAGA_JWT_SECRET": JWT_SECRET, **env}
        if admin is not None:
            environ |= {"SAGA_BOOTSTRAP_ADMIN_USERNAME": admin[0],
                        "SAGA_BOOTSTRAP_ADMIN_PASSWORD": admin[1]}
        code = AS_IN_THE_IMAGE.format(blocked=self.blocked, module=self.job.module)
        argv = [sys.executable, "-c", code, *(self.job.args if args is None else args)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=environ, cwd=self.cwd)

    @staticmethod
    def finish(process: subprocess.Popen[str]) -> Run:
        output, _ = process.communicate(timeout=120)
        for line in output.splitlines():  # only ECS lines, each keeping the contract
            assert validate_line(line) == [], line
        assert PASSWORD not in output
        return Run(process.returncode, [json.loads(line) for line in output.splitlines()],
                   output)


@pytest.fixture
def run(job: Job, blocked: set[str], database: str, tmp_path: Path) -> Runner:
    return Runner(job, blocked, database, tmp_path)


def state(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the bootstrap could touch."""
    engine = create_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)
    tables = {"products": t.products, "stock": t.stock, "stock_movements": t.stock_movements,
              "users": t.users}
    try:
        with engine.connect() as conn:
            return {name: sorted(tuple(row) for row in conn.execute(select(table)))
                    for name, table in tables.items()}
    finally:
        engine.dispose()


def sign_in(client: FlaskClient, username: str, password: str) -> Any:
    return client.post("/auth/token", json={"username": username, "password": password})


def test_a_fresh_cluster_gets_its_catalogue_and_first_admin_once(
    run: Runner, job: Job, database: str,
) -> None:
    catalogue = json.loads(job.catalogue.read_text())["products"]
    assert state(database)["products"] == []

    first = run()
    assert first.code == 0, first.output
    assert first.actions().count("saga.bootstrap.product.added") == len(catalogue)
    assert "saga.bootstrap.admin.created" in first.actions()
    assert first.line("saga.bootstrap.done")["labels"]["products_added"] == str(len(catalogue))

    client = api_client()
    listed = {p["sku"]: p for p in client.get("/products?limit=100").get_json()["items"]}
    assert {sku: (p["price"], p["available"]) for sku, p in listed.items()} == {
        p["sku"]: (p["price"], p["initial_stock"]) for p in catalogue}
    movements = state(database)["stock_movements"]
    assert sorted((m[1], m[2], m[3]) for m in movements) == sorted(
        (p["sku"], "initial", p["initial_stock"]) for p in catalogue)

    token = sign_in(client, ADMIN, PASSWORD)
    assert token.status_code == 200, token.get_data(as_text=True)
    admin = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    created = client.post("/products", headers=admin, json={
        "sku": "ADMIN-1", "name": "made by the first admin", "price": "1.00"})
    assert created.status_code == 201, created.get_data(as_text=True)

    before = state(database)
    second = run()
    assert second.code == 0, second.output
    assert state(database) == before
    assert second.actions().count("saga.bootstrap.product.kept") == len(catalogue)
    assert "saga.bootstrap.admin.unchanged" in second.actions()
    assert second.line("saga.bootstrap.done")["labels"]["products_added"] == "0"


def test_a_changed_password_is_reported_not_applied(run: Runner,
                                                    database: str) -> None:
    assert run().code == 0
    before = state(database)
    changed = run(admin=(ADMIN, "another password 2"))
    assert changed.code == 0, changed.output
    warning = changed.line("saga.bootstrap.admin.password_differs")
    assert warning["log.level"] == "warning" and "NOT changed" in warning["message"]
    assert state(database) == before
    client = api_client()
    assert sign_in(client, ADMIN, PASSWORD).status_code == 200
    problem(sign_in(client, ADMIN, "another password 2"), 401)


def test_only_the_first_admin_is_made(run: Runner, database: str) -> None:
    assert run(args=[]).code == 0
    before = state(database)
    other = run(args=[], admin=("ops2", PASSWORD))
    assert other.code == 0
    assert "an admin exists already (ops)" in other.line("saga.bootstrap.admin.other_admin")[
        "message"]
    assert state(database) == before


def test_a_registered_customer_is_never_promoted(run: Runner,
                                                 database: str) -> None:
    client = api_client()
    assert client.post("/auth/register", json={"username": ADMIN, "password": "squatter's pw"}
                       ).status_code == 201
    refused = run(args=[])
    assert refused.code == 2
    assert "is not promoted" in refused.line("saga.bootstrap.failed")["message"]
    [user] = state(database)["users"]
    assert list(user[2]) == ["customer"]


def test_without_credentials_no_admin_is_made(run: Runner, database: str) -> None:
    done = run(admin=None)
    assert done.code == 0
    assert "saga.bootstrap.admin.none" in done.actions()
    assert state(database)["users"] == []
    assert state(database)["products"]


def test_a_product_in_the_database_is_kept_as_it_is(run: Runner, database: str,
                                                     tmp_path: Path, job: Job) -> None:
    assert run().code == 0
    before = state(database)
    catalogue = json.loads(job.catalogue.read_text())
    catalogue["products"][0] |= {"price": "999.99", "initial_stock": 1}
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(catalogue))
    again = run(args=["--catalogue", str(edited)])
    assert again.code == 0
    sku = catalogue["products"][0]["sku"]
    kept = [line for line in again.lines if line.get("labels", {}).get("sku") == sku]
    assert kept[0]["log.level"] == "warning" and kept[0]["labels"]["differs"] == "price"
    assert state(database) == before


@pytest.mark.parametrize(("catalogue", "named"), [
    ({"products": [{"sku": "F-1", "name": "float", "price": 2.5}]}, "products.0.price"),
    ({"products": [{"sku": "U-1", "name": "x", "price": "1.00", "stock": 3}]}, "products.0.stock"),
    ({"products": [{"sku": "D-1", "name": "x", "price": "1.00"}] * 2}, "listed twice"),
    ({"items": []}, "products"),
])
def test_a_bad_catalogue_writes_nothing_and_names_the_field(
    run: Runner, database: str, tmp_path: Path, catalogue: Any, named: str,
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(catalogue))
    refused = run(args=["--catalogue", str(path)])
    assert refused.code == 2
    assert named in refused.line("saga.bootstrap.failed")["message"]
    assert state(database) == {"products": [], "stock": [], "stock_movements": [], "users": []}


@pytest.mark.parametrize(("admin", "named"), [
    (("ops", "short"), "password"),
    (("no spaces allowed", PASSWORD), "username"),
    (("ops", ""), "SAGA_BOOTSTRAP_ADMIN_PASSWORD too"),
])
def test_bad_credentials_write_nothing(run: Runner, database: str,
                                       admin: tuple[str, str], named: str) -> None:
    refused = run(admin=admin)
    assert refused.code == 2
    assert named in refused.line("saga.bootstrap.failed")["message"]
    assert state(database)["products"] == []


def test_an_unmigrated_database_names_the_migration_job(
    run: Runner, fresh_database: Callable[[str], str],
) -> None:
    refused = run(database_url=fresh_database("unmigrated"))
    assert refused.code == 2
    assert "saga-migrate" in refused.line("saga.bootstrap.failed")["message"]


def test_two_runs_at_once_take_turns(run: Runner, database: str,
                                     job: Job) -> None:
    """Both wait on the bootstrap's lock (held here until both are waiting), then one adds
    everything and the other finds it there: no unique violation, nothing twice."""
    with psycopg.connect(database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        # Waiting here is the test's doing, not a slow run's: no statement timeout.
        first, second = (run.start(SAGA_DB_STATEMENT_TIMEOUT_MS="0") for _ in range(2))

        def waiting() -> bool:
            row = holder.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                 "AND NOT granted").fetchone()
            return row is not None and row[0] == 2

        wait_for(waiting, timeout=60, message="both runs waiting on the bootstrap lock")
        holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    results = [run.finish(first), run.finish(second)]
    assert [r.code for r in results] == [0, 0], [r.output for r in results]
    products = json.loads(job.catalogue.read_text())["products"]
    added = [r.line("saga.bootstrap.done")["labels"]["products_added"] for r in results]
    assert sorted(added) == ["0", str(len(products))]
    assert len(state(database)["products"]) == len(products)
    assert len(state(database)["users"]) == 1
