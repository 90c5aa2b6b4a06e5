"""The `editsweep` command: one subcommand per stage, each defined next to the code it runs.

Each module listed in COMMAND_MODULES exposes `register(subparsers)`, which adds its parser(s)
and sets `func` (a callable taking the parsed args and returning an exit code). Modules are
imported here but must keep heavy imports (torch, transformers) inside their functions so
`editsweep --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES = (
    "editsweep.sandbox.cli",      # sandbox run
    "editsweep.bench",            # bench sandbox | generation | editing
    "editsweep.benchmark.cli",    # benchmark build | stats
    "editsweep.editing.cli",      # stats compute
    "editsweep.models.cli",       # models train | list
    "editsweep.status",           # status SWEEP_DIR
    "editsweep.report",           # report SWEEP_DIR
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="editsweep", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that stage is not part of this checkout yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
