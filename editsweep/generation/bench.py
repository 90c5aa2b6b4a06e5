"""Generation throughput: per-problem `model.generate` against `editsweep.generation.sample`, same run.

One GPU, a 7B architecture with random weights (`--random-init`; no download), the same
prompts for every contender, exactly `--new-tokens` new tokens per sequence (stop strings
off, EOS ignored), n samples per prompt, the sampling settings of conf/generation/default.yaml.

Prompts of realistic lengths: HumanEval-style function headers with docstrings, made from the
Python standard library's documented functions (every machine has them) and chosen so that
their token lengths follow a fixed HumanEval/MBPP-like distribution (40 to 450 tokens, median
about 120), tokenized by a byte-level BPE trained here on the same texts.

Contenders:
- baseline: `model.generate(prompt, num_return_sequences=n)` one problem at a time, as an
  evaluation harness without batching does; it is slow (tens of ms per step), so it runs on an
  evenly spaced subset of `--baseline-prompts` prompts, and rates are compared per new token;
- hf_batched: one plain `model.generate` over `--hf-batched-prompts` left-padded prompts × n
  (the issue's anchor for "plain batching");
- editsweep variants over all prompts: kv layout shared/expand × CUDA graphs on/off, and the
  expand layout with/without graphs on 16 prompts (a small sweep cell, where launches matter).
Reported per contender: new tokens/s, ratio to the baseline, ms per decoding step, peak GPU
memory, and the fraction of the memory-bandwidth floor: per step, the bytes any exact decoder
must read — the weights (minus the embedding table, of which a step reads a few rows) plus every
distinct cached token once (a problem's prompt once for its n samples) — over the bandwidth of
a device-to-device copy measured in the same run (bytes read + written per second).

Measured on one H200 (torch 2.11, transformers 5.17, 2026-11-21; 160 prompts of 40-445 tokens,
mean 139, n=5, 256 new tokens, temperature 0.2, top-p 0.95; copy bandwidth 4.22-4.26 TB/s):

    contender            CodeLlama-7B shape          CodeQwen1.5-7B shape
                         tok/s  ratio ms/step floor  tok/s  ratio ms/step floor
    baseline (4 prompts)   178    1.0   28.1   -       160    1.0   31.3   -
    hf_batched (32 × 5)   2045   11.5   78.2   -      1971   12.3   81.2   -
    graphs_expand         9403   52.9   38.9  0.28   17657  110.4   40.0  0.13
    eager_expand          9398   52.9   40.4  0.27   17831  111.5   41.7  0.12
    graphs_shared         8005   45.0   46.7  0.23   16264  101.7   45.0  0.12
    eager_shared          7885   44.3   49.2  0.22   15839   99.1   47.5  0.11
    graphs_expand_16p     4783   26.9   13.2  0.35    6120   38.3   11.4  0.30
    eager_expand_16p      4967   27.9   15.4  0.30    4716   29.5   16.4  0.21

Peak memory: Llama 132 GB (two batches of 320 and 480 sequences), Qwen2 54 GB expand / 35 GB
shared (one batch of 800). The sampler takes 2.4 ms (Llama vocab) / 5.8 ms (Qwen vocab) of a
step for 800 rows. The kernel profile (`--profile`) shows the expand layout's decode attention
in cuDNN's SDPA kernel (~31% of CUDA time, Llama) and the shared layout's small batched
matmuls falling to sm75 CUTLASS kernels, which is why "shared" loses despite reading less.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import statistics
import sys
import time
from pathlib import Path

__all__ = ["add_arguments", "run", "benchmark_prompts", "VARIANTS"]

log = logging.getLogger(__name__)

# name: (config changes, number of prompts or None for all). The *_16p pair measures a small
# sweep cell (16 problems × n), where launch overhead — what CUDA graphs remove — matters most.
VARIANTS = {
    "graphs_expand": (dict(kv_layout="expand", cuda_graphs=True), None),
    "eager_expand": (dict(kv_layout="expand", cuda_graphs=False), None),
    "graphs_shared": (dict(kv_layout="shared", cuda_graphs=True), None),
    "eager_shared": (dict(kv_layout="shared", cuda_graphs=False), None),
    "graphs_expand_16p": (dict(kv_layout="expand", cuda_graphs=True), 16),
    "eager_expand_16p": (dict(kv_layout="expand", cuda_graphs=False), 16),
}

TINY = {"tiny_llama": "llama", "tiny_qwen2": "qwen2"}

_STDLIB_MODULES = (
    "argparse", "ast", "base64", "bisect", "calendar", "collections", "colorsys", "configparser", "contextlib",
    "copy", "csv", "datetime", "decimal", "difflib", "dis", "email.utils", "fnmatch", "fractions", "ftplib",
    "functools", "gettext", "glob", "gzip", "heapq", "hmac", "html", "http.cookiejar", "imaplib", "inspect",
    "ipaddress", "itertools", "json", "locale", "logging", "mailbox", "mimetypes", "ntpath", "operator",
    "optparse", "os", "pathlib", "pickle", "pkgutil", "platform", "plistlib", "poplib", "posixpath", "pprint",
    "pydoc", "quopri", "random", "re", "reprlib", "sched", "secrets", "shlex", "shutil", "smtplib", "socket",
    "statistics", "string", "subprocess", "sysconfig", "tarfile", "tempfile", "textwrap", "threading",
    "timeit", "tokenize", "traceback", "turtle", "typing", "urllib.parse", "urllib.request", "uuid",
    "warnings", "wave", "weakref", "zipfile",
)


def _function_prompts() -> list[str]:
    """HumanEval-style prompts (def line + indented docstring) of documented stdlib functions."""
    import importlib
    import inspect

    prompts, seen = [], set()
    for module_name in _STDLIB_MODULES:
        try:
            module = importlib.import_module(module_name)
        except Exception:  # a module missing on this platform (e.g. no tkinter for turtle)
            continue
        for name, obj in sorted(vars(module).items()):
            if name.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != module.__name__:
                continue
            doc = inspect.getdoc(obj)
            if not doc or len(doc) < 40:
                continue
            try:
                signature = str(inspect.signature(obj))
            except (TypeError, ValueError):
                continue
            body = "\n".join(("    " + line) if line.strip() else "" for line in doc.replace('"""', "'''").split("\n"))
            prompt = f'def {name}{signature}:\n    """\n{body}\n    """\n'
            if prompt not in seen:
                seen.add(prompt)
                prompts.append(prompt)
    if len(prompts) < 50:
        raise RuntimeError(f"only {len(prompts)} documented stdlib functions found; cannot build benchmark prompts")
    return prompts


def _target_lengths(count: int) -> list[int]:
    """Token lengths from a log-normal (median 120, σ 0.55) clipped to [40, 450], at evenly spaced quantiles."""
    targets = []
    for i in range(count):
        q = (i + 0.5) / count
        z = statistics.NormalDist().inv_cdf(q)
        targets.append(int(min(450, max(40, round(120 * math.exp(0.55 * z))))))
    return targets


def benchmark_prompts(count: int, arch: str):
    """`count` prompts whose token lengths follow `_target_lengths`, and the tokenizer trained on them."""
    from editsweep.models.tokenizer import train_tokenizer

    candidates = _function_prompts()
    tokenizer = train_tokenizer(candidates, arch)
    lengths = [len(ids) for ids in tokenizer(candidates)["input_ids"]]
    pool = sorted(range(len(candidates)), key=lambda i: (lengths[i], candidates[i]))
    chosen: list[int] = []
    used: set[int] = set()
    for target in _target_lengths(count):
        best = min((i for i in pool if i not in used), key=lambda i: (abs(lengths[i] - target), i), default=None)
        if best is None:
            best = pool[len(chosen) % len(pool)]  # fewer candidates than prompts: reuse
        used.add(best)
        chosen.append(best)
    return [candidates[i] for i in chosen], tokenizer


def _evenly_spaced(lengths: list[int], count: int) -> list[int]:
    """Indices of `count` prompts evenly spaced in the order of their lengths."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    count = min(count, len(order))
    return [order[int((j + 0.5) * len(order) / count)] for j in range(count)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-config", default="codellama_7b",
                        help="codellama_7b | codeqwen15_7b | deepseek_coder_6_7b | tiny_llama | tiny_qwen2")
    parser.add_argument("--random-init", action="store_true",
                        help="random weights of the named architecture (required for the 7B configs: no download)")
    parser.add_argument("--prompts", type=int, default=160)
    parser.add_argument("--n", type=int, default=5, help="samples per prompt")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--baseline-prompts", type=int, default=4,
                        help="prompts (evenly spaced by length) for the slow per-problem baseline; 0 skips it")
    parser.add_argument("--hf-batched-prompts", type=int, default=32, help="prompts in the plain batched generate; 0 skips it")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {', '.join(VARIANTS)}")
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--dtype", default=None, help="bfloat16 on GPU, float32 on CPU by default")
    parser.add_argument("--time-budget-s", type=float, default=480.0,
                        help="skip contenders not yet started once this much time has passed")
    parser.add_argument("--profile", action="store_true",
                        help="print the top CUDA kernels of a short eager decode (32 prompts) per kv layout")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (last line)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON result here")


def _build_model(name: str, device: str, dtype, vocab: int):
    if name in TINY:
        from transformers import AutoModelForCausalLM

        from editsweep.models.configs import tiny_config

        import torch

        torch.manual_seed(0)
        config = tiny_config(TINY[name], vocab_size=vocab)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
        return model.eval()
    from editsweep.models.configs import build_random_model

    return build_random_model(name, dtype=dtype, device=device)


def _copy_bandwidth(device) -> float | None:
    """Bytes read + written per second by a large device-to-device copy (median of 20)."""
    import torch

    if device.type != "cuda":
        return None
    size = 2 * 2**30
    src = torch.empty(size, dtype=torch.uint8, device=device).random_(0, 255)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    times = []
    for _ in range(20):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del src, dst
    torch.cuda.empty_cache()
    return 2 * size / statistics.median(times)


def _sampler_ms(device, dtype, rows: int, vocab: int, cfg) -> float | None:
    """Median time of one `choose_tokens` call on [rows, vocab] random logits (GPU only)."""
    import torch

    from editsweep.generation.sampler import choose_tokens

    if device.type != "cuda":
        return None
    logits = torch.randn(rows, vocab, device=device).to(dtype)
    keys = torch.randint(0, 2**32, (rows, 2), device=device)
    step = torch.zeros(1, dtype=torch.long, device=device)
    for _ in range(3):
        choose_tokens(logits, keys, step, cfg.temperature, cfg.top_p, cfg.top_k)
    times = []
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        choose_tokens(logits, keys, step, cfg.temperature, cfg.top_p, cfg.top_k)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _teacher_forced_check(model, tokenizer, prompts, cfg, device, tokens: int = 16) -> dict:
    """Does our greedy decoding pick the model's own argmax? Checked against HF's full forward.

    For each kv layout and graphs on/off: decode `tokens` greedy tokens with our engine, then
    run the model's ordinary forward (its SDPA attention, no cache) over prompt + those tokens
    and compare, position by position, its argmax with our token (the same prefix each time, so
    one bf16 near-tie does not derail the rest). `max_gap` is the largest logit difference
    between HF's argmax and our token: near-ties give gaps of bf16 rounding size; a wrong cache
    or mask gives gaps of the logits' own spread (`logit_std`).
    """
    import torch

    from editsweep.generation.engine import generate_token_ids
    from editsweep.generation.sampling import prompt_token_ids

    greedy = cfg.replace(temperature=0.0, max_new_tokens=tokens, stop_mode="none", ignore_eos=True)
    ids = prompt_token_ids(tokenizer, prompts, greedy, model)

    def score(sequences: list[list[int]]) -> dict:
        agree, total, gap, spread = 0, 0, 0.0, []
        for prompt, sequence in zip(ids, sequences):
            full = torch.tensor([prompt + sequence], device=device)
            with torch.inference_mode():
                logits = model(input_ids=full).logits[0, len(prompt) - 1 : -1].float()
            chosen = torch.tensor(sequence, device=device)
            agree += int((logits.argmax(-1) == chosen).sum())
            total += len(sequence)
            gap = max(gap, float((logits.max(-1).values - logits.gather(-1, chosen[:, None])[:, 0]).max()))
            spread.append(float(logits.std()))
        return {"top1_agreement": round(agree / total, 3), "max_gap": round(gap, 4),
                "logit_std": round(statistics.mean(spread), 3)}

    # The control: HF's own cached greedy decoding, scored the same way (its bf16 noise level).
    hf_sequences = []
    for prompt in ids:
        out = model.generate(
            torch.tensor([prompt], device=device), attention_mask=torch.ones(1, len(prompt), dtype=torch.long, device=device),
            do_sample=False, max_new_tokens=tokens, min_new_tokens=tokens, pad_token_id=tokenizer.pad_token_id,
        )
        hf_sequences.append(out[0, len(prompt):].tolist())
    report = {"hf_generate": score(hf_sequences)}
    for layout in ("expand", "shared"):
        for graphs in (False, True):
            ours = generate_token_ids(
                model, ids, 2, greedy.replace(kv_layout=layout, cuda_graphs=graphs), [0] * len(ids), tokenizer.pad_token_id
            )
            entry = score([samples[0] for samples in ours])
            # identical rows may still round differently in bf16 batched kernels; count it, don't fail
            entry["samples_identical"] = round(statistics.mean(float(samples[0] == samples[1]) for samples in ours), 3)
            report[f"{layout}{'_graphs' if graphs else ''}"] = entry
    return report


def _profile_decode(model, tokenizer, prompts, cfg, device, layouts=("expand", "shared"), rows: int = 12) -> dict:
    """Top CUDA kernels of a short eager decode per layout (torch.profiler), as text tables."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from editsweep.generation import sample

    tables = {}
    for layout in layouts:
        run_cfg = cfg.replace(kv_layout=layout, cuda_graphs=False, max_new_tokens=33)
        sample(model, tokenizer, prompts, cfg.n_samples, run_cfg, seeds=list(range(len(prompts))), progress=False)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            sample(model, tokenizer, prompts, cfg.n_samples, run_cfg, seeds=list(range(len(prompts))), progress=False)
            torch.cuda.synchronize()
        averages = prof.key_averages()
        for key in ("self_device_time_total", "self_cuda_time_total"):
            try:
                tables[layout] = averages.table(sort_by=key, row_limit=rows, max_name_column_width=60)
                break
            except Exception:  # the key name differs between torch versions
                continue
    return tables


def _weight_bytes(model) -> int:
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    if head is None or head.weight.data_ptr() != embed.data_ptr():
        total -= embed.numel() * embed.element_size()
    return total


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gb(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None


def _hf_generate(model, tokenizer, prompts, n, cfg, new_tokens, device):
    """Plain `generate` on left-padded `prompts`, exactly `new_tokens` per sequence; returns new tokens."""
    batch = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
    out = model.generate(
        **batch, do_sample=cfg.temperature > 0, temperature=cfg.temperature or None, top_p=cfg.top_p,
        num_return_sequences=n, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
        pad_token_id=tokenizer.pad_token_id,
    )
    generated = out.shape[1] - batch["input_ids"].shape[1]
    if generated != new_tokens:
        raise RuntimeError(f"generate produced {generated} new tokens, expected {new_tokens}")
    return out.shape[0] * generated


def run(args: argparse.Namespace) -> int:
    import torch
    import transformers

    from editsweep.generation import GenerationConfig, sample
    from editsweep.generation.engine import bytes_per_kv_token

    started = time.perf_counter()
    name = args.model_config
    if name not in TINY and not args.random_init:
        print(f"--model-config {name} needs --random-init (this benchmark never downloads weights)", file=sys.stderr)
        return 2
    unknown = [v for v in args.variants.split(",") if v and v not in VARIANTS]
    if unknown:
        print(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    arch = TINY.get(name) or ("qwen2" if "qwen" in name else "llama")

    log.info("building %d prompts and a tokenizer", args.prompts)
    prompts, tokenizer = benchmark_prompts(args.prompts, arch)
    prompt_lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    log.info("building %s (%s, random weights) on %s", name, dtype, device)
    model = _build_model(name, device.type, dtype, len(tokenizer))
    bandwidth = _copy_bandwidth(device)
    weights = _weight_bytes(model)
    kv_token = bytes_per_kv_token(model)
    base_cfg = GenerationConfig.from_yaml().replace(
        max_new_tokens=args.new_tokens, stop_mode="none", ignore_eos=True, n_samples=args.n
    )
    result = {
        "benchmark": "generation",
        "model_config": name,
        "random_init": True,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "dtype": str(dtype).replace("torch.", ""),
        "prompts": {"count": len(prompts), "tokens_min": min(prompt_lengths), "tokens_mean": round(statistics.mean(prompt_lengths), 1),
                    "tokens_max": max(prompt_lengths)},
        "n": args.n,
        "new_tokens": args.new_tokens,
        "sampling": {"temperature": base_cfg.temperature, "top_p": base_cfg.top_p, "top_k": base_cfg.top_k},
        "copy_bandwidth_GBps": bandwidth / 1e9 if bandwidth else None,
        "weight_GB_read_per_step": weights / 1e9,
        "kv_bytes_per_token": kv_token,
        "sampler_ms_per_step": _sampler_ms(device, dtype, len(prompts) * args.n, model.config.vocab_size, base_cfg),
        "contenders": {},
    }
    contenders = result["contenders"]

    def out_of_time(label: str) -> bool:
        if time.perf_counter() - started > args.time_budget_s:
            log.warning("time budget of %.0f s spent; skipping %s", args.time_budget_s, label)
            contenders[label] = {"skipped": "time budget"}
            return True
        return False

    # Warm-up: kernels, cuBLAS handles, allocator, one-time Python imports.
    _hf_generate(model, tokenizer, prompts[:1], args.n, base_cfg, 4, device)
    sample(model, tokenizer, prompts[:2], args.n, base_cfg.replace(max_new_tokens=4), seeds=[0, 1], progress=False)
    _sync(device)
    check = [prompts[i] for i in sorted(range(len(prompts)), key=lambda i: prompt_lengths[i])[:: max(1, len(prompts) // 3)][:3]]
    try:
        result["greedy_check"] = _teacher_forced_check(model, tokenizer, check, base_cfg, device)
        log.info("greedy tokens vs HF forward argmax: %s", result["greedy_check"])
    except Exception as exc:  # a failed check is reported, and the measurements still run
        result["greedy_check_error"] = f"{type(exc).__name__}: {exc}"[:500]
        log.exception("greedy check failed")

    if args.baseline_prompts > 0 and not out_of_time("baseline"):
        k = min(args.baseline_prompts, len(prompts))
        subset = _evenly_spaced(prompt_lengths, k)
        _reset_peak(device)
        t0 = time.perf_counter()
        tokens = 0
        for i in subset:
            tokens += _hf_generate(model, tokenizer, [prompts[i]], args.n, base_cfg, args.new_tokens, device)
        _sync(device)
        seconds = time.perf_counter() - t0
        contenders["baseline"] = {
            "what": f"model.generate(prompt, num_return_sequences={args.n}) one problem at a time, "
                    f"on {k} of the {len(prompts)} prompts (evenly spaced by length); per-token rate",
            "prompts": k,
            "new_tokens": tokens,
            "seconds": seconds,
            "tokens_per_s": tokens / seconds,
            "ms_per_step": 1e3 * seconds / (k * args.new_tokens),
            "peak_memory_GB": _peak_gb(device),
        }
        log.info("baseline: %.1f new tokens/s", tokens / seconds)

    if args.hf_batched_prompts > 0 and not out_of_time("hf_batched"):
        count = min(args.hf_batched_prompts, len(prompts))
        _reset_peak(device)
        t0 = time.perf_counter()
        try:
            tokens = _hf_generate(model, tokenizer, prompts[:count], args.n, base_cfg, args.new_tokens, device)
            _sync(device)
            seconds = time.perf_counter() - t0
            contenders["hf_batched"] = {
                "what": f"one plain model.generate over {count} left-padded prompts × {args.n}",
                "prompts": count, "new_tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
                "ms_per_step": 1e3 * seconds / args.new_tokens, "peak_memory_GB": _peak_gb(device),
            }
        except Exception as exc:  # e.g. out of memory: report it, keep measuring the others
            contenders["hf_batched"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            log.warning("hf_batched failed: %s", exc)

    for variant in [v for v in args.variants.split(",") if v]:
        if out_of_time(variant):
            continue
        changes, count = VARIANTS[variant]
        cfg = base_cfg.replace(**changes)
        chosen = _evenly_spaced(prompt_lengths, count) if count else list(range(len(prompts)))
        run_prompts = [prompts[i] for i in chosen]
        stats: list = []
        _reset_peak(device)
        t0 = time.perf_counter()
        try:
            completions = sample(model, tokenizer, run_prompts, args.n, cfg, seeds=chosen, stats=stats, progress=False)
        except Exception as exc:
            contenders[variant] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            log.warning("%s failed: %s", variant, exc)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        _sync(device)
        seconds = time.perf_counter() - t0
        if len(completions) != len(run_prompts) or any(len(c) != args.n for c in completions):
            raise RuntimeError(f"{variant}: wrong number of completions")
        tokens = len(run_prompts) * args.n * args.new_tokens
        steps = sum(s.steps for s in stats)
        decode_s = sum(s.decode_s for s in stats)
        floor_s = None
        if bandwidth:
            floor_bytes = 0.0
            for s in stats:
                floor_bytes += s.steps * (weights + s.prompt_tokens * kv_token)
                floor_bytes += s.sequences * kv_token * s.steps * (s.steps + 1) / 2
            floor_s = floor_bytes / bandwidth
        contenders[variant] = {
            "what": f"editsweep.generation.sample, {len(run_prompts)} prompts × {args.n}, {cfg.kv_layout} kv, "
                    f"cuda graphs {'on' if cfg.cuda_graphs else 'off'}",
            "prompts": len(run_prompts),
            "new_tokens": tokens,
            "seconds": seconds,
            "tokens_per_s": tokens / seconds,
            "batches": len(stats),
            "sequences_per_batch": [s.sequences for s in stats],
            "prefill_s": sum(s.prefill_s for s in stats),
            "capture_s": sum(s.capture_s for s in stats),
            "decode_s": decode_s,
            "ms_per_step": 1e3 * decode_s / steps if steps else None,
            "graphs_captured": [s.graphs for s in stats],
            "graph_error": next((s.graph_error for s in stats if s.graph_error), None),
            "cache_GB": max(s.cache_bytes for s in stats) / 1e9,
            "peak_memory_GB": _peak_gb(device),
            "floor_fraction": (floor_s / decode_s) if floor_s and decode_s else None,
        }
        log.info("%s: %.0f new tokens/s", variant, tokens / seconds)

    if args.profile and device.type == "cuda" and not out_of_time("profile"):
        try:
            tables = _profile_decode(model, tokenizer, [prompts[i] for i in _evenly_spaced(prompt_lengths, 32)], base_cfg, device)
        except Exception as exc:
            log.exception("profile failed")
            tables = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        result["profile"] = tables
        for layout, table in tables.items():
            print(f"\n-- top CUDA kernels, 32 prompts × {args.n}, 32 decoding steps, {layout} kv, eager --\n{table}")

    base = contenders.get("baseline", {}).get("tokens_per_s")
    for entry in contenders.values():
        if base and "tokens_per_s" in entry:
            entry["ratio_to_baseline"] = entry["tokens_per_s"] / base
    ours = {k: v for k, v in contenders.items() if k in VARIANTS and VARIANTS[k][1] is None and "tokens_per_s" in v}
    if ours:
        best = max(ours, key=lambda k: ours[k]["tokens_per_s"])
        result["best"] = best
        result["ratio"] = ours[best].get("ratio_to_baseline")
    result["wall_s"] = time.perf_counter() - started
    _print_table(result)
    text = json.dumps(result, default=float)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json:
        print(text)
    return 0


def _print_table(result: dict) -> None:
    print(
        f"\n{result['model_config']} (random weights, {result['dtype']}) on {result['device']}; "
        f"{result['prompts']['count']} prompts of {result['prompts']['tokens_min']}-{result['prompts']['tokens_max']} "
        f"tokens (mean {result['prompts']['tokens_mean']}), n={result['n']}, {result['new_tokens']} new tokens each; "
        f"copy bandwidth {result['copy_bandwidth_GBps'] or 0:.0f} GB/s; sampler "
        f"{result['sampler_ms_per_step'] or 0:.2f} ms/step for {result['prompts']['count'] * result['n']} rows"
    )
    header = f"{'contender':<18}{'prompts':>8}{'tok/s':>11}{'ratio':>8}{'ms/step':>9}{'peak GB':>9}{'floor':>7}"
    print(header)
    print("-" * len(header))
    for label, entry in result["contenders"].items():
        if "tokens_per_s" not in entry:
            print(f"{label:<18}  {entry.get('error') or entry.get('skipped')}")
            continue
        ratio = entry.get("ratio_to_baseline")
        floor = entry.get("floor_fraction")
        peak = entry.get("peak_memory_GB")
        print(
            f"{label:<18}{entry['prompts']:>8}{entry['tokens_per_s']:>11.0f}"
            f"{(f'{ratio:.1f}' if ratio else '-'):>8}{(entry.get('ms_per_step') or 0):>9.1f}"
            f"{(f'{peak:.1f}' if peak is not None else '-'):>9}{(f'{floor:.2f}' if floor else '-'):>7}"
        )
    for name, check in (result.get("greedy_check") or {}).items():
        print(f"greedy check {name:<14} top-1 agreement with HF forward {check['top1_agreement']:.3f}, "
              f"max logit gap {check['max_gap']:.4f} (logit std {check['logit_std']:.3f})"
              + (f", n=2 greedy samples identical {check['samples_identical']:.2f}" if "samples_identical" in check else ""))
    if result.get("best"):
        ratio = result.get("ratio")
        print(f"best: {result['best']}" + (f", {ratio:.1f}× the per-problem baseline" if ratio else ""))
