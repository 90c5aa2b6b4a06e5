#!/usr/bin/env python3
"""Sandbox throughput benchmark; the same code as `editsweep bench sandbox` (see editsweep/sandbox/bench.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from editsweep.bench import run_named  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_named("sandbox"))
