"""`editsweep stats compute`: second-moment statistics for a model, computed once into the shared cache.

Every sweep cell of MEMIT/PMET (and ROME with `mom2_adjustment`) reads them from there; running
this first (e.g. once per model on a GPU node) keeps the cells from computing them in parallel.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("stats", help="second-moment statistics for MEMIT/PMET/ROME")
    sub = parser.add_subparsers(dest="stats_command", metavar="ACTION", required=True)
    compute = sub.add_parser("compute", help="compute (or find cached) C = E[k kᵀ] for the given layers in one pass")
    compute.add_argument("--model", required=True, help="hub id, local path, paper key (codellama_7b …) or small:/tiny: alias")
    compute.add_argument("--layers", type=int, nargs="+", required=True, help="layer indices, e.g. 4 5 6 7 8")
    compute.add_argument("--corpus", default="stdlib", help="stdlib (default) or hf:DATASET[:CONFIG][@SPLIT]")
    compute.add_argument("--tokens", type=int, default=200_000, help="token budget (default 200000)")
    compute.add_argument("--module", default="mlp_down", choices=("mlp_down", "attn_out"), help="whose input (default mlp_down)")
    compute.add_argument("--max-length", type=int, default=1024, help="tokens kept per document (default 1024)")
    compute.add_argument("--batch-tokens", type=int, default=8192, help="padded tokens per forward (default 8192)")
    compute.add_argument("--cache-dir", default=None, help="default $EDITSWEEP_STATS_DIR or $EDITSWEEP_CACHE/stats")
    compute.add_argument("--device", default=None, help="default cuda when available, else cpu")
    compute.add_argument("--dtype", default=None, help="default bfloat16 on GPU, float32 on CPU")
    compute.add_argument("--json", action="store_true", help="print one JSON object")
    compute.set_defaults(func=_compute)


def _compute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from editsweep.editing.identity import model_identity, tokenizer_identity
    from editsweep.editing.stats import StatsRequest, default_stats_dir, get_second_moments, stats_path
    from editsweep.models.arch import arch_of
    from editsweep.models.loading import load_model

    try:
        request = StatsRequest(corpus=args.corpus, tokens=args.tokens, max_length=args.max_length, batch_tokens=args.batch_tokens)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    model, tokenizer = load_model(args.model, device=args.device, dtype=args.dtype)
    arch = arch_of(model)
    bad = [layer for layer in args.layers if not 0 <= layer < arch.n_layers]
    if bad:
        log.error("layers %s do not exist in %s (%d layers)", bad, args.model, arch.n_layers)
        return 2
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_stats_dir()
    started = time.perf_counter()
    get_second_moments(
        model, tokenizer, args.layers, corpus=request.corpus, tokens=request.tokens, cache_dir=cache_dir,
        module=args.module, max_length=request.max_length, batch_tokens=request.batch_tokens,
    )
    seconds = time.perf_counter() - started
    model_id, tokenizer_id = model_identity(model), tokenizer_identity(tokenizer)
    paths = {layer: str(stats_path(cache_dir, model_id, tokenizer_id, args.module, layer, request)) for layer in sorted(set(args.layers))}
    summary = {"model": args.model, "identity": model_id, "module": args.module, "corpus": request.corpus,
               "tokens": request.tokens, "seconds": round(seconds, 2), "files": paths}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"second moments of {args.module} for {args.model} ({request.tokens} tokens of {request.corpus}) in {seconds:.1f} s:")
        for layer, path in paths.items():
            print(f"  layer {layer}: {path}")
    return 0
