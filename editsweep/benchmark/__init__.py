"""The synthetic-deprecation benchmark: sources, API catalog, rewriter, selection, validation.

Public surface: `build_benchmark(source, out_dir, **options) -> Path`, `load_benchmark(dir)`
(the problem records), `load_catalog(dir)`, `ensure_benchmark(data_config)`, `Problem`, and
`editsweep.benchmark.demo.training_texts()` for the small models. See README.md here.
"""

from editsweep.benchmark.build import build_benchmark, load_benchmark, load_catalog, load_stats
from editsweep.benchmark.config import ensure_benchmark
from editsweep.benchmark.problem import Problem

__all__ = ["Problem", "build_benchmark", "ensure_benchmark", "load_benchmark", "load_catalog", "load_stats"]
