"""`python -m functions.api.bootstrap [--catalogue FILE]`: a cluster's first run, as the Job
knative/cluster/bootstrap-job.yaml runs it from the functions' image after the migrations.

Adds the catalogue's products the database lacks (catalogue_import.py) and, given
SAGA_BOOTSTRAP_ADMIN_USERNAME and _PASSWORD, the api's first admin (first_admin.py). It
changes nothing that exists, so a second run changes nothing; what it leaves although the
input differs is a warning. ECS lines on stdout; exit 0 done, 2 bad input (the line says
what to fix), 1 anything else (the database)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import psycopg
from pydantic import ValidationError

from common.logging import configure_logging, log_event
from common.pg import Tx
from common.resources import Resources
from common.settings import Settings, get_settings
from functions.api import sql
from functions.api.auth import RegisterIn
from functions.api.catalogue_import import (
    Catalogue,
    CatalogueError,
    Imported,
    import_catalogue,
    load_catalogue,
)
from functions.api.errors import validation_summary
from functions.api.first_admin import AdminOutcome, AdminRefused, credentials, ensure_admin

SERVICE = "saga-bootstrap"
# pg_advisory_xact_lock's bigint, ASCII "sagaboot": two runs at once (the Job, and an
# operator's copy of it) take turns instead of racing to insert the same rows.
LOCK_KEY = 0x73616761626F6F74

log = logging.getLogger("saga.bootstrap")
T = TypeVar("T")


class BadInput(Exception):
    """Something the operator must fix in the catalogue, the Secret or the environment."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m functions.api.bootstrap",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue", type=Path,
                        help='a JSON file {"products": [...]} with the fields of POST /products')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter_ns()
    try:
        settings = get_settings()
    except ValidationError as exc:
        configure_logging(SERVICE)
        return _failed(BadInput(f"the settings: {validation_summary(exc)}"), 2)
    configure_logging(SERVICE, settings.log_level)
    try:
        catalogue = load_catalogue(args.catalogue) if args.catalogue else None
        admin = _wanted_admin(settings)
        _run(settings, catalogue, admin, started)
    except (BadInput, CatalogueError, AdminRefused) as exc:
        return _failed(exc, 2)
    except psycopg.Error as exc:
        if exc.sqlstate == "42P01":  # undefined_table
            return _failed(BadInput("the database has no schema yet: run the migrations "
                                    "first (the Job saga-migrate: alembic upgrade head)"), 2)
        # The server's message, never the statement's parameters.
        return _failed(RuntimeError(str(exc).splitlines()[0]), 1)
    return 0


def _wanted_admin(settings: Settings) -> RegisterIn | None:
    # A Secret's empty value is an unset one.
    username = settings.bootstrap_admin_username or None
    secret = settings.bootstrap_admin_password
    password = secret.get_secret_value() if secret is not None else ""
    if username is None and not password:
        return None
    if username is None or not password:
        missing = "USERNAME" if username is None else "PASSWORD"
        raise BadInput(f"set SAGA_BOOTSTRAP_ADMIN_{missing} too, or neither (no admin is made)")
    return credentials(username, password)


def _run(settings: Settings, catalogue: Catalogue | None, admin: RegisterIn | None,
         started: int) -> None:
    resources = Resources(settings)
    try:
        _run_on(resources, catalogue, admin, started)
    finally:
        resources.close()


def _run_on(resources: Resources, catalogue: Catalogue | None, admin: RegisterIn | None,
            started: int) -> None:
    try:
        resources.pool  # noqa: B018 (made here: an unset DATABASE_URL is bad input)
    except RuntimeError as exc:
        raise BadInput(str(exc)) from None

    def locked(work: Callable[[Tx], T]) -> T:
        def step(tx: Tx) -> T:
            tx.one(sql.BOOTSTRAP_LOCK, {"key": LOCK_KEY})
            return work(tx)
        return resources.transaction(step)

    imported = Imported()
    if catalogue is not None:
        imported = locked(lambda tx: import_catalogue(tx, catalogue))
        _report_catalogue(imported)
    if admin is None:
        log_event(log, "no bootstrap admin given (SAGA_BOOTSTRAP_ADMIN_USERNAME and _PASSWORD, "
                  "from the Secret saga-bootstrap): none made", action="saga.bootstrap.admin.none",
                  outcome="success")
    else:
        outcome, admins = locked(lambda tx: ensure_admin(tx, admin))
        _report_admin(admin.username, outcome, admins)
    log_event(log, f"bootstrap done: {len(imported.added)} product(s) added, "
              f"{len(imported.kept)} already there", action="saga.bootstrap.done",
              outcome="success", fields={
                  "event.duration": time.perf_counter_ns() - started,
                  "labels.products_added": str(len(imported.added)),
                  "labels.products_kept": str(len(imported.kept))})


def _report_catalogue(imported: Imported) -> None:
    for sku in imported.added:
        log_event(log, f"product {sku} added with its initial stock",
                  action="saga.bootstrap.product.added", outcome="success",
                  fields={"labels.sku": sku})
    for sku, differs in imported.kept.items():
        if differs:
            log_event(log, f"product {sku} is already in the database; its {', '.join(differs)} "
                      "there differ from the catalogue and were not changed (the catalogue "
                      "only adds products)", action="saga.bootstrap.product.kept",
                      outcome="success", level=logging.WARNING,
                      fields={"labels.sku": sku, "labels.differs": ",".join(differs)})
        else:
            log_event(log, f"product {sku} is already in the database",
                      action="saga.bootstrap.product.kept", outcome="success",
                      fields={"labels.sku": sku})


def _report_admin(username: str, outcome: AdminOutcome, admins: list[str]) -> None:
    level, message = logging.INFO, {
        AdminOutcome.CREATED: f"admin {username!r} created: it signs in with POST /auth/token",
        AdminOutcome.UNCHANGED: f"admin {username!r} exists already: unchanged",
    }.get(outcome, "")
    if outcome is AdminOutcome.PASSWORD_DIFFERS:
        level, message = logging.WARNING, (
            f"admin {username!r} exists and SAGA_BOOTSTRAP_ADMIN_PASSWORD is not its password: "
            "its password was NOT changed (the bootstrap never changes a user). It signs in "
            "with the password it had; put that one back in the Secret saga-bootstrap, or "
            "delete the Secret")
    elif outcome is AdminOutcome.OTHER_ADMIN:
        level, message = logging.WARNING, (
            f"an admin exists already ({', '.join(admins)}): {username!r} was not created "
            "(the bootstrap makes only the first admin)")
    log_event(log, message, action=f"saga.bootstrap.admin.{outcome.value}", outcome="success",
              level=level, fields={"labels.admin": username})


def _failed(exc: Exception, code: int) -> int:
    log_event(log, f"bootstrap failed: {exc}", action="saga.bootstrap.failed",
              outcome="failure", level=logging.ERROR,
              fields={"error.type": type(exc).__name__, "error.message": str(exc)})
    return code


if __name__ == "__main__":
    sys.exit(main())
