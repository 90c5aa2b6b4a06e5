#!/usr/bin/env python
"""Generation throughput benchmark (see editsweep/generation/bench.py); same as `editsweep bench generation`.

    PYTHONPATH=. python benchmarks/generation.py --model-config codellama_7b --random-init --json
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from editsweep.generation import bench  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(bench.__doc__ or "").strip().splitlines()[0])
    bench.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return bench.run(args)


if __name__ == "__main__":
    sys.exit(main())
