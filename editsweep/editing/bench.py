"""Editing speed and memory: every method on a 7B architecture (random weights) plus the statistics pass.

Per method: seconds per request (ROME, GRACE, FT; applied one request per call, as the instant
regime does) or per batch (MEMIT, PMET: `--batch` requests over the configured layers), after one
warm-up edit that samples the context templates and loads the statistics (reported separately,
once per cell); peak GPU memory; and a check that `restore()` brought the weights back exactly.
The second-moment statistics of MEMIT's layers are computed first, into a fresh cache, and timed.
Hyperparameters are the shipped per-model ones (`conf/method/*.yaml`).

Requests mimic the benchmark's code-context ones: a demo problem's prompt plus its solution up to
the first call, preceded by other demo solutions until `--prompt-tokens`; the target is the call
renamed to `my_…`, the subject is the prompt's last line, the key its last token.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run", "bench_requests", "TARGETS"]

log = logging.getLogger(__name__)

METHOD_ORDER = ("rome", "memit", "pmet", "grace", "ft")
# DESIGN.md targets on one H200 in bf16 (seconds; memory in GB); the anchor is EasyEdit's ≈5 s per ROME edit.
TARGETS = {"rome": 3.0, "memit": 15.0, "pmet": 15.0, "grace": 3.0, "ft": 5.0, "stats": 300.0, "peak_gb": 40.0}
_PER_BATCH = ("memit", "pmet")
_CALL = re.compile(r"\b([A-Za-z_][\w.]*)\(")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-config", default="tiny_llama",
                        help="codellama_7b, deepseek_coder_6_7b, codeqwen15_7b, tiny_llama or tiny_qwen2 (default)")
    parser.add_argument("--random-init", action="store_true", help="random weights of that architecture (no download)")
    parser.add_argument("--methods", nargs="+", default=list(METHOD_ORDER), choices=METHOD_ORDER)
    parser.add_argument("--requests", type=int, default=3, help="timed requests for per-request methods (default 3)")
    parser.add_argument("--batch", type=int, default=10, help="MEMIT/PMET batch size (default 10)")
    parser.add_argument("--prompt-tokens", type=int, default=256, help="prompt length in tokens (default 256)")
    parser.add_argument("--stats-tokens", type=int, default=200_000, help="statistics token budget (default 200000)")
    parser.add_argument("--device", default=None, help="default cuda when available")
    parser.add_argument("--dtype", default=None, help="default bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--out", default=None, help="also write the JSON result to this file")


def bench_requests(tokenizer: Any, n: int, prompt_tokens: int) -> list[Any]:
    """`n` code-context requests built from the demo problems, each with a prompt of ≈ `prompt_tokens` tokens."""
    from editsweep.benchmark.demo import load_demo_problems
    from editsweep.editing.protocol import EditRequest

    problems = load_demo_problems()
    texts = [p.solution for p in problems]
    requests = []
    for index, problem in enumerate(p for p in problems if _CALL.search(p.reference)):
        match = _CALL.search(problem.reference)
        line_end = problem.reference.find("\n", match.start())
        context = problem.prompt + problem.reference[: match.start()]
        target = "my_" + match.group(1).replace(".", "_") + problem.reference[match.end() - 1 : line_end]
        filler = []
        k = index
        while len(tokenizer("".join(filler) + context)["input_ids"]) < prompt_tokens:
            filler.insert(0, texts[k % len(texts)] + "\n\n")
            k += 7
        prompt = "".join(filler) + context
        subject = prompt.rsplit("\n", 1)[-1].strip() or prompt.split()[-1]
        requests.append(EditRequest(prompt, target, subject, key_position="last"))
        if len(requests) == n:
            return requests
    raise ValueError(f"the demo problems give only {len(requests)} requests, {n} asked")


def _sync(device: Any) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _peak_gb(device: Any) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if str(device).startswith("cuda") else None


def _load(args: argparse.Namespace) -> tuple[Any, Any, str]:
    from editsweep.models.configs import KNOWN_MODELS, build_random_model
    from editsweep.models.loading import load_model, local_tokenizer, tiny_model

    name = args.model_config
    if name.startswith("tiny_"):
        arch = name.split("_", 1)[1]
        device = args.device or "cpu"
        return tiny_model(arch, dtype=args.dtype or "float32", device=device), local_tokenizer(arch), device
    if name not in KNOWN_MODELS:
        raise ValueError(f"unknown --model-config {name!r}; known: {', '.join(KNOWN_MODELS)}, tiny_llama, tiny_qwen2")
    if not args.random_init:
        model, tokenizer = load_model(name, device=args.device, dtype=args.dtype)
        return model, tokenizer, str(next(model.parameters()).device)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    model = build_random_model(name, dtype=dtype, device=device)
    # No download: the local tokenizer's ids (4096) all exist in every 7B vocabulary.
    tokenizer = local_tokenizer(KNOWN_MODELS[name].model_type)
    return model, tokenizer, device


def _param_checksums(model: Any, names: list[str]) -> dict[str, tuple[float, float]]:
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        return {n: (float(params[n].double().sum()), float(params[n].double().abs().sum())) for n in names}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import transformers

    from editsweep.editing.registry import get_editor, resolve_hparams
    from editsweep.editing.stats import get_second_moments
    from editsweep.models.arch import arch_of

    started = time.perf_counter()
    model, tokenizer, device = _load(args)
    arch = arch_of(model)
    load_s = time.perf_counter() - started
    need = max(args.batch, args.requests + 1)
    requests = bench_requests(tokenizer, need, args.prompt_tokens)
    prompt_tokens = [len(tokenizer(r.prompt)["input_ids"]) for r in requests]
    stats_dir = Path(tempfile.mkdtemp(prefix="editsweep-bench-stats-"))
    result: dict[str, Any] = {
        "model_config": args.model_config, "random_init": bool(args.random_init or args.model_config.startswith("tiny_")),
        "device": str(device),
        "gpu": torch.cuda.get_device_name() if str(device).startswith("cuda") else None,
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "n_layers": arch.n_layers, "hidden": arch.hidden_size, "intermediate": arch.intermediate_size,
        "load_s": round(load_s, 2), "prompt_tokens_mean": round(sum(prompt_tokens) / len(prompt_tokens), 1),
        "targets": TARGETS, "methods": {},
    }
    memit_layers = resolve_hparams("memit", args.model_config)["layers"]
    log.info("statistics: layers %s, %d tokens of stdlib", memit_layers, args.stats_tokens)
    _sync(device)
    t0 = time.perf_counter()
    get_second_moments(model, tokenizer, memit_layers, corpus="stdlib", tokens=args.stats_tokens, cache_dir=stats_dir)
    _sync(device)
    result["stats"] = {"layers": memit_layers, "tokens": args.stats_tokens, "seconds": round(time.perf_counter() - t0, 2)}
    for method in args.methods:
        overrides = {"mom2_stats_dir": str(stats_dir), "mom2_tokens": args.stats_tokens} if method in ("rome", "memit", "pmet") else {}
        hparams = resolve_hparams(method, args.model_config, overrides)
        editor = get_editor(method, **hparams)
        names = [f"{arch.mlp_down(l)}.weight" for l in hparams["layers"]]
        before = _param_checksums(model, names)
        if str(device).startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        log.info("%s: warm-up edit", method)
        _sync(device)
        t0 = time.perf_counter()
        editor.apply(model, tokenizer, requests[-1:]).restore()
        _sync(device)
        warmup = time.perf_counter() - t0
        timings = []
        if method in _PER_BATCH:
            batch = requests[: args.batch]
            t0 = time.perf_counter()
            handle = editor.apply(model, tokenizer, batch)
            _sync(device)
            timings.append(time.perf_counter() - t0)
            handle.restore()
        else:
            for request in requests[: args.requests]:
                t0 = time.perf_counter()
                handle = editor.apply(model, tokenizer, [request])
                _sync(device)
                timings.append(time.perf_counter() - t0)
                handle.restore()
        restored = _param_checksums(model, names) == before
        seconds = sum(timings) / len(timings)
        entry = {
            "unit": "batch" if method in _PER_BATCH else "request",
            "batch": args.batch if method in _PER_BATCH else 1,
            "layers": hparams["layers"],
            "seconds": round(seconds, 3),
            "timings": [round(t, 3) for t in timings],
            "warmup_s": round(warmup, 2),
            "peak_gb": None if _peak_gb(device) is None else round(_peak_gb(device), 2),
            "restored_exactly": restored,
            "target_s": TARGETS[method],
        }
        result["methods"][method] = entry
        log.info("%s: %.2f s per %s, peak %s GB, restored %s", method, seconds, entry["unit"], entry["peak_gb"], restored)
    return result


def _print_table(result: dict[str, Any]) -> None:
    print(f"editing benchmark: {result['model_config']} ({'random weights' if result['random_init'] else 'checkpoint'}), "
          f"{result['dtype']} on {result['gpu'] or result['device']}, prompts ≈ {result['prompt_tokens_mean']} tokens")
    print(f"{'what':<8} {'seconds':>9} {'per':>8} {'target':>8} {'target/measured':>16} {'peak GB':>8}")
    stats = result["stats"]
    print(f"{'stats':<8} {stats['seconds']:>9.2f} {str(len(stats['layers'])) + ' layers':>8} {TARGETS['stats']:>8.0f} "
          f"{TARGETS['stats'] / max(stats['seconds'], 1e-9):>16.2f} {'':>8}")
    for method, entry in result["methods"].items():
        ratio = entry["target_s"] / max(entry["seconds"], 1e-9)
        peak = "" if entry["peak_gb"] is None else f"{entry['peak_gb']:.1f}"
        print(f"{method:<8} {entry['seconds']:>9.2f} {entry['unit']:>8} {entry['target_s']:>8.0f} {ratio:>16.2f} {peak:>8}"
              + ("" if entry["restored_exactly"] else "  RESTORE FAILED"))


def run(args: argparse.Namespace) -> int:
    result = measure(args)
    text = json.dumps(result)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.json:
        print(text)
    else:
        _print_table(result)
    ok = all(entry["restored_exactly"] for entry in result["methods"].values())
    return 0 if ok else 1

