"""`python -m tools.image`: build the image with buildah and print its facts (./taskw image).

    python -m tools.image [build] [--tag localhost/order-saga/functions:local]
    python -m tools.image facts [--tag ...]       # the facts of an image already built
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from tools import REPO_ROOT
from tools.image.build import DEFAULT_TAG, build
from tools.image.buildah import ImageError
from tools.image.facts import collect


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.image", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", nargs="?", choices=("build", "facts"), default="build")
    parser.add_argument("--tag", default=DEFAULT_TAG, help=f"default {DEFAULT_TAG}")
    args = parser.parse_args(argv)
    try:
        if args.action == "build":
            began = time.monotonic()
            build(REPO_ROOT, args.tag, output=sys.stdout)
            print(f"built in {time.monotonic() - began:.1f} s")
        print(collect(args.tag).report())
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
