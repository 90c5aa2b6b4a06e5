#!/usr/bin/env python
"""Generation throughput benchmark (see editsweep/generation/bench.py); same as `editsweep bench generation`.

    PYTHONPATH=. python benchmarks/generation.py --model-config codellama_7b --random-init --json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from editsweep.bench import run_named  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_named("generation"))
