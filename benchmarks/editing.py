#!/usr/bin/env python
"""Editing speed and memory benchmark (see editsweep/editing/bench.py); same as `editsweep bench editing`.

    PYTHONPATH=. python benchmarks/editing.py --model-config codellama_7b --random-init --json
    python benchmarks/editing.py --model-config tiny_llama --stats-tokens 5000   # CPU check
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from editsweep.bench import run_named  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_named("editing"))
