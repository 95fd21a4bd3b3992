"""`saga` entry point: every command is a module `tools/cli/cmd_<name>.py` with
`register(subparsers)`, discovered here, so adding a command never edits this file; each
imports its heavy dependencies inside its handler, so `saga --help` stays fast. What every
command shares is handled here once: a refused setting (SettingsError) is one line and exit
2; a broker or database that cannot be reached (Unreachable: tools/infra/reach.py) is one
line and exit 1; librdkafka's log lines are counted and summarised in one line."""

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
    from common.settings_errors import SettingsError
    from tools.infra.kafka_clients import kafka_log_tally
    from tools.infra.reach import Unreachable
    from tools.settings import get_local_settings

    name = f"saga {args.command}"
    with kafka_log_tally() as tally:
        try:
            # Every command runs on these settings: a refused value stops it here, before it
            # starts anything (bench, chaos and demo start a stack of their own).
            get_local_settings()
            code = func(args)
        except SettingsError as exc:
            return _refused(name, exc, 2)
        except Unreachable as exc:  # its line says what the Kafka client's would
            return _refused(name, exc, 1)
        except KeyboardInterrupt:
            return 130
        if summary := tally.summary():
            print(f"{name}: {summary}", file=sys.stderr)
        return code


def _refused(name: str, exc: Exception, code: int) -> int:
    print(f"{name}: {exc}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
