"""Every Job of the manifests, run from the image as `task deploy` runs them: on an empty
database until each completes (a failed run is retried up to its backoffLimit, as
Kubernetes does), then again on the migrated one, where a run changes nothing. The
migration Job brings the database to Alembic's head."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg
from alembic.script import ScriptDirectory

from common.migrate import alembic_config
from tests.image.conftest import cluster
from tools.deploy.manifests import Doc
from tools.image.process import run_container
from tools.image.rootfs import MountedImage
from tools.image.workloads import Workload

DEFAULT_BACKOFF_LIMIT = 6  # Kubernetes' default for a Job


def _schema(url: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Every column of every table of ours, and Alembic's version rows."""
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_schema, table_name, column_name, data_type, column_default "
            "FROM information_schema.columns WHERE table_schema NOT IN "
            "('pg_catalog', 'information_schema') ORDER BY 1, 2, 3").fetchall()
        versions = conn.execute("SELECT * FROM alembic_version").fetchall()
    return ([tuple(map(str, row)) for row in columns], [tuple(map(str, row)) for row in versions])


def _run_until_complete(jobs: Sequence[Workload], mounted: MountedImage) -> dict[str, str]:
    """Run each Job until it exits 0, at most 1 + backoffLimit times each; the last output
    of each. The Jobs are applied together, so one may fail until another has run."""
    outputs: dict[str, str] = {}
    pending = list(jobs)
    for _ in range(1 + max(int(j.spec.get("backoffLimit", DEFAULT_BACKOFF_LIMIT))
                           for j in jobs)):
        failed = []
        for job in pending:
            done = run_container(job.container, mounted.path, timeout=300)
            outputs[job.name] = done.stdout
            if done.returncode != 0:
                failed.append(job)
        pending = failed
        if not pending:
            return outputs
    raise AssertionError("Jobs that never completed: " + "; ".join(
        f"{job.name}: {outputs[job.name][-1500:]}" for job in pending))


def test_the_jobs_migrate_an_empty_database_and_change_nothing_the_second_time(
    overlay: list[Doc], mounted: MountedImage, fresh_database: Callable[[str], str],
    kafka_bootstrap: str,
) -> None:
    url = fresh_database("image_jobs")
    jobs = [w for w in cluster(overlay, mounted, url, kafka_bootstrap) if w.kind == "Job"]
    assert "saga-migrate" in [job.name for job in jobs]

    first = _run_until_complete(jobs, mounted)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    columns, versions = _schema(url)
    assert versions == [(head,)], first["saga-migrate"][-1500:]
    assert len(columns) > 50

    with psycopg.connect(url) as conn:  # the bootstrap Job's catalogue, from its ConfigMap
        products = conn.execute("SELECT count(*) FROM inventory.products").fetchone()
    assert products is not None and products[0] > 0, first["saga-bootstrap"][-1500:]

    again = _run_until_complete(jobs, mounted)  # the next `task deploy`
    assert _schema(url) == (columns, versions)
    assert "Running upgrade" in first["saga-migrate"]
    assert "Running upgrade" not in again["saga-migrate"]
