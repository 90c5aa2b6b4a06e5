"""`editsweep benchmark build|stats`: build the synthetic-deprecation benchmark, print its statistics."""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "null", "all") else int(text)


def register(subparsers) -> None:
    parser = subparsers.add_parser("benchmark", help="build the benchmark or print its statistics")
    commands = parser.add_subparsers(dest="benchmark_command", metavar="ACTION", required=True)

    build = commands.add_parser("build", help="build a benchmark directory (cached)")
    build.add_argument("--source", default="demo", help="demo | hub | local:PATH (default: demo)")
    build.add_argument("--out", required=True, type=Path, help="output directory")
    build.add_argument("--config", type=Path, help="a conf/data/*.yaml file; command-line options win")
    build.add_argument("--n-apis", type=_optional_int, help="number of APIs (default 65; 'all')")
    build.add_argument("--n-api-problems", type=_optional_int, help="reliability+generalization size (default 587; 'all')")
    build.add_argument("--n-specificity", type=_optional_int, help="specificity size (default 210; 'all')")
    build.add_argument("--template", help="edit request template: code_context (default) | statement")
    build.add_argument("--max-prompt-chars", type=int, help="edit request prompt budget in characters")
    build.add_argument("--cache-dir", help="build cache directory ('none' to disable)")
    build.add_argument("--workers", type=int, help="sandbox workers (default: one per core)")
    build.add_argument("--no-jail", action="store_true", help="validate without firejail (development only)")
    build.add_argument("--force", action="store_true", help="rebuild even if the cache is valid")
    build.set_defaults(func=run_build)

    stats = commands.add_parser("stats", help="print a built benchmark's statistics beside the paper's")
    stats.add_argument("directory", type=Path)
    stats.add_argument("--dropped", action="store_true", help="also list every dropped candidate and why")
    stats.set_defaults(func=run_stats)


def run_build(args) -> int:
    from editsweep.benchmark.build import build_benchmark, load_stats
    from editsweep.benchmark.config import read_data_config
    from editsweep.benchmark.stats import format_stats

    source, options = ("demo", {})
    if args.config is not None:
        source, options = read_data_config(args.config)
    if args.source != "demo" or args.config is None:
        source = args.source
    for name in ("n_apis", "n_api_problems", "n_specificity", "template", "max_prompt_chars", "workers"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.cache_dir is not None:
        options["cache_dir"] = None if args.cache_dir.lower() == "none" else args.cache_dir
    if args.no_jail:
        options["jail"] = False
    if args.force:
        options["force"] = True
    started = time.monotonic()
    out = build_benchmark(source, args.out, **options)
    print(format_stats(load_stats(out)))
    print(f"benchmark: {out} ({time.monotonic() - started:.1f} s)")
    return 0


def run_stats(args) -> int:
    from editsweep.benchmark.build import load_stats
    from editsweep.benchmark.stats import format_stats

    stats_file = args.directory / "stats.json"
    if not stats_file.is_file():
        log.error("%s not found: build the benchmark first (editsweep benchmark build --out %s)", stats_file, args.directory)
        return 1
    stats = load_stats(args.directory)
    print(format_stats(stats))
    if args.dropped:
        for drop in stats["dropped"]:
            print(f"{drop['stage']:<12} {drop['problem_id']:<16} {drop['api'] or '-':<22} {drop['reason']}")
    return 0
