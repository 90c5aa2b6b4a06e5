"""Read a `conf/data/*.yaml` file into (source, build options) for `build_benchmark`.

Keys: `name`, `source` (demo | hub | local:PATH, or `local` with `path`; a relative `path`
is resolved against the project root), `template`, `max_prompt_chars`, `cache_dir` (relative:
to the working directory), and optionally `n_apis`, `n_api_problems`, `n_specificity`, `apis`
(null means "all"). Other keys are ignored here.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

BUILD_KEYS = (
    "template", "max_prompt_chars", "cache_dir", "n_apis", "n_api_problems", "n_specificity", "apis",
    "timeout_s", "reliability_fraction",
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def resolve_source(source: str, path: str | None) -> str:
    if source == "local":
        if not path:
            raise ValueError("data config: source 'local' needs a 'path'")
        folder = Path(os.path.expandvars(os.path.expanduser(path)))
        if not folder.is_absolute():
            folder = (PROJECT_ROOT / folder).resolve()
        return f"local:{folder}"
    return source


def options_from_mapping(data: dict, where: str) -> tuple[str, dict]:
    if "source" not in data:
        raise ValueError(f"{where}: missing key 'source'")
    source = resolve_source(str(data["source"]), data.get("path"))
    options = {key: data[key] for key in BUILD_KEYS if key in data}
    if options.get("cache_dir"):
        options["cache_dir"] = os.path.expandvars(os.path.expanduser(str(options["cache_dir"])))
    return source, options


def ensure_benchmark(data, out_dir: str | Path | None = None) -> Path:
    """Build (or reuse) the benchmark a data config describes; returns its directory.

    `data` is a mapping such as the sweep's `cfg.data` (an OmegaConf node is converted). The
    directory is `out_dir`, else `<cache_dir>/<name>`.
    """
    from editsweep.benchmark.build import DEFAULT_CACHE_DIR, build_benchmark

    if not isinstance(data, dict):
        from omegaconf import OmegaConf

        data = OmegaConf.to_container(data, resolve=True)
    source, options = options_from_mapping(dict(data), "data config")
    if out_dir is None:
        root = Path(options.get("cache_dir") or DEFAULT_CACHE_DIR)
        out_dir = root / str(data.get("name") or "benchmark")
    return build_benchmark(source, out_dir, **options)


def read_data_config(path: str | Path) -> tuple[str, dict]:
    path = Path(path)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    return options_from_mapping(data, str(path))
