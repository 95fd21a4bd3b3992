"""The products `./taskw up` puts into its database: those of knative/cluster/catalogue.json,
the file the cluster's bootstrap Job imports, through the same import code
(functions/api/catalogue_import.py), so the local and the cluster's catalogues cannot
drift. A product already there is left as it is: a second start adds nothing. A checkout
without the file (a test's own manifests) seeds nothing."""

from __future__ import annotations

from pathlib import Path

import psycopg

from common.pg import Tx
from common.settings import to_postgres_url

CATALOGUE = Path("knative") / "cluster" / "catalogue.json"


def seed_catalogue(database_url: str, root: Path) -> int:
    """Add the products of `root`'s catalogue that the database lacks; how many it added."""
    from functions.api.catalogue_import import import_catalogue, load_catalogue

    path = root / CATALOGUE
    if not path.exists():
        return 0
    catalogue = load_catalogue(path)
    with psycopg.connect(to_postgres_url(database_url)) as conn:  # commits as it ends
        return len(import_catalogue(Tx(conn), catalogue).added)
