#!/usr/bin/env python
"""Editing speed and memory benchmark (see editsweep/editing/bench.py); same as `editsweep bench editing`.

    PYTHONPATH=. python benchmarks/editing.py --model-config codellama_7b --random-init --json
    python benchmarks/editing.py --model-config tiny_llama --stats-tokens 5000   # CPU check
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from editsweep.editing import bench  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(bench.__doc__ or "").strip().splitlines()[0])
    bench.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return bench.run(args)


if __name__ == "__main__":
    sys.exit(main())
