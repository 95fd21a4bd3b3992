"""`saga` entry point. Every command lives in its own module `tools/cli/cmd_<name>.py` with
`register(subparsers)`; this file only discovers them, so adding a command never edits it.
Command modules import their heavy dependencies inside the handler, so `saga --help` stays
fast."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence

import tools.cli

Command = Callable[[argparse.Namespace], int]



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saga", description="Order saga: local runtime, tokens, migrations, operator tools."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(tools.cli.__path__), key=lambda m: m.name):
        if module.name.startswith("cmd_"):
            importlib.import_module(f"tools.cli.{module.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
