#!/usr/bin/env python3
"""Sandbox throughput benchmark; the same code as `editsweep bench sandbox` (see editsweep/sandbox/bench.py)."""

import argparse
import logging
import sys

from editsweep.sandbox import bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=bench.__doc__.splitlines()[0])
    bench.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return bench.run(args)


if __name__ == "__main__":
    sys.exit(main())
