"""`editsweep bench NAME`: the shipped benchmarks, each printed as a ratio against its anchor.

Each benchmark lives beside the code it measures and exposes `add_arguments(parser)` and
`run(args) -> int`; this module only routes to them.
"""

from __future__ import annotations

import importlib

BENCHMARKS = {
    "sandbox": "editsweep.sandbox.bench",
    "generation": "editsweep.generation.bench",
    "editing": "editsweep.editing.bench",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="run a shipped benchmark")
    names = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name, module_name in BENCHMARKS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that benchmark is not part of this checkout yet
                continue
            raise
        sub = names.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)


def run_named(name: str, argv: list[str] | None = None) -> int:
    """Run benchmark `name` with its own command line (`benchmarks/<name>.py` calls this)."""
    import argparse
    import logging
    import sys

    module = importlib.import_module(BENCHMARKS[name])
    parser = argparse.ArgumentParser(description=(module.__doc__ or "").strip().splitlines()[0])
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return module.run(args)
