"""`build_benchmark`: sources → mined uses → rewrites → sandbox validation → selection → files.

Output files (docs/architecture.md, "Benchmark directory"): `benchmark.jsonl`, `catalog.json`,
`stats.json`, `validation.jsonl`, plus `manifest.json` (the cache key and each file's sha256).
A build is cached under `cache_dir/<key>`, the key being a hash of the loaded source problems,
the catalog, the code that decides (benchmark, apis and sandbox modules) and the options; a
directory whose files do not match its manifest is treated as absent and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from editsweep.benchmark.catalog import CatalogEntry, catalog_digest, load_api_catalog
from editsweep.benchmark.mining import ApiUse, problem_api_uses
from editsweep.benchmark.problem import Problem
from editsweep.benchmark.requests import DEFAULT_MAX_PROMPT_CHARS, DEFAULT_TEMPLATE, TEMPLATES, make_request
from editsweep.benchmark.rewriter import CallSite, rewrite_reference
from editsweep.benchmark.rules import RewriteError
from editsweep.benchmark.selection import PAPER, PAPER_RELIABILITY_FRACTION, hash_order, pick_specificity, split
from editsweep.benchmark.sources import ConversionFailure, load_source, parse_source_spec, quiet_source_warnings
from editsweep.benchmark.stats import build_stats
from editsweep.benchmark.validation import (
    DEFAULT_TIMEOUT_S,
    Check,
    baseline_check,
    pair_checks,
    run_checks,
    specificity_check,
    validation_record,
)

log = logging.getLogger(__name__)

OUTPUT_FILES = ("benchmark.jsonl", "catalog.json", "stats.json", "validation.jsonl")
MANIFEST = "manifest.json"
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "editsweep" / "benchmark"
_PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BuildOptions:
    """What shapes a build (all part of the cache key except the last three)."""

    n_apis: int | None = PAPER["n_apis"]
    n_api_problems: int | None = PAPER["reliability"] + PAPER["generalization"]
    n_specificity: int | None = PAPER["specificity"]
    reliability_fraction: float = PAPER_RELIABILITY_FRACTION
    apis: tuple[str, ...] | None = None  # restrict the candidate APIs (None: the whole catalog)
    template: str = DEFAULT_TEMPLATE
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS
    timeout_s: float = DEFAULT_TIMEOUT_S
    jail: bool = True
    # not part of the key:
    workers: int | None = None
    cache_dir: str | None = str(DEFAULT_CACHE_DIR)
    force: bool = False

    KEYLESS = ("workers", "cache_dir", "force")

    @classmethod
    def for_source(cls, source: str, **overrides) -> BuildOptions:
        """Defaults for a source (the demo keeps all its problems and its own APIs), then overrides."""
        kind, _ = parse_source_spec(source)
        base: dict = {}
        if kind == "demo":
            from editsweep.benchmark.demo import DEMO_APIS

            base = {"n_apis": None, "n_api_problems": None, "n_specificity": None, "apis": DEMO_APIS}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown benchmark build options {unknown}; known: {sorted(known)}")
        base.update({k: v for k, v in overrides.items()})
        if base.get("apis") is not None:
            base["apis"] = tuple(base["apis"])
        options = cls(**base)
        options.check()
        return options

    def check(self) -> None:
        if self.template not in TEMPLATES:
            raise ValueError(f"unknown edit request template {self.template!r}; expected one of {TEMPLATES}")
        for name in ("n_apis", "n_api_problems", "n_specificity"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer or null, got {value!r}")
        if not 0 < self.reliability_fraction < 1:
            raise ValueError(f"reliability_fraction must be in (0, 1), got {self.reliability_fraction}")
        if self.max_prompt_chars < 80:
            raise ValueError(f"max_prompt_chars must be at least 80, got {self.max_prompt_chars}")

    def keyed(self) -> dict:
        data = asdict(self)
        for name in self.KEYLESS:
            data.pop(name)
        data["apis"] = list(self.apis) if self.apis is not None else None
        return data


# ---- caching ---------------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def code_digest() -> str:
    """Hash of the code whose behaviour decides the benchmark (benchmark, apis, sandbox)."""
    paths = sorted(_PACKAGE.glob("*.py")) + [_PACKAGE.parent / "apis.py"] + sorted((_PACKAGE.parent / "sandbox").glob("*.py"))
    digest = hashlib.sha256()
    for path in paths:
        if path.name == "cli.py" and path.parent == _PACKAGE:
            continue
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_key(problems: list[Problem], failures: list[ConversionFailure], options: BuildOptions) -> str:
    payload = {
        "problems": _sha256(json.dumps([p.to_dict() for p in problems], sort_keys=True).encode()),
        "conversion_failures": [asdict(f) for f in failures],
        "catalog": catalog_digest(),
        "code": code_digest(),
        "options": options.keyed(),
    }
    return _sha256(json.dumps(payload, sort_keys=True).encode())[:32]


def read_manifest(directory: Path) -> dict | None:
    """The manifest if every listed file is present with the listed checksum; else None."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        for name in OUTPUT_FILES:
            if _sha256((directory / name).read_bytes()) != files[name]:
                log.warning("benchmark cache %s: %s does not match its manifest; rebuilding", directory, name)
                return None
        return manifest
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("benchmark cache %s: unreadable manifest (%s); rebuilding", directory, exc)
        return None


def write_directory(directory: Path, contents: dict[str, bytes], key: str) -> None:
    """Write the files and then the manifest, each atomically (temp file, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {"cache_key": key, "files": {name: _sha256(data) for name, data in contents.items()}}
    items = list(contents.items()) + [(MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())]
    (directory / MANIFEST).unlink(missing_ok=True)  # a crash between files leaves no valid manifest
    for name, data in items:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _read_contents(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in OUTPUT_FILES}


# ---- the build --------------------------------------------------------------------------------
@dataclass
class _Pair:
    problem: Problem
    entry: CatalogEntry
    reference_new: str
    sites: list[CallSite]


@dataclass
class _Drops:
    items: list[dict] = field(default_factory=list)

    def add(self, problem_id: str, api: str | None, stage: str, reason: str) -> None:
        self.items.append({"problem_id": problem_id, "api": api, "stage": stage, "reason": reason})

    def sorted(self) -> list[dict]:
        return sorted(self.items, key=lambda d: (d["stage"], d["api"] or "", d["problem_id"]))


def _first_site(sites: list[CallSite]) -> CallSite:
    calls = [s for s in sites if s.is_call]
    return (calls or sites)[0]


def _mine(problems: list[Problem]) -> dict[str, dict[str, ApiUse]]:
    from tqdm import tqdm

    return {p.id: problem_api_uses(p) for p in tqdm(problems, desc="mine", unit="problem", leave=False)}


def _make_pairs(problems, uses, pool: dict[str, CatalogEntry], drops: _Drops) -> list[_Pair]:
    pairs: list[_Pair] = []
    for problem in problems:
        for api in sorted(set(uses[problem.id]) & set(pool)):
            use = uses[problem.id][api]
            if use.in_prompt:
                drops.add(problem.id, api, "prompt", f"{api} is used in the prompt, which the rewritten solution shares")
                continue
            try:
                reference_new, sites = rewrite_reference(problem.prompt, problem.reference, pool[api])
            except RewriteError as exc:
                drops.add(problem.id, api, "rewrite", str(exc))
                continue
            pairs.append(_Pair(problem, pool[api], reference_new, sites))
    return pairs


def _record(problem: Problem, subset: str, pair: _Pair | None, edit_request: dict | None) -> dict:
    return {
        "id": problem.id,
        "source": problem.source,
        "prompt": problem.prompt,
        "entry_point": problem.entry_point,
        "tests": list(problem.tests),
        "reference": problem.reference,
        "reference_new": pair.reference_new if pair else problem.reference,
        "api": pair.entry.api if pair else None,
        "new_api": pair.entry.new_api if pair else None,
        "subset": subset,
        "edit_request": edit_request,
        "task_text": problem.task_text,
    }


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def _json(data) -> bytes:
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode()


def build_contents(
    problems: list[Problem], failures: list[ConversionFailure], options: BuildOptions
) -> dict[str, bytes]:
    """The output files of one build, as bytes (deterministic for the same inputs)."""
    with quiet_source_warnings():
        return _build_contents(problems, failures, options)


def _build_contents(problems: list[Problem], failures: list[ConversionFailure], options: BuildOptions) -> dict[str, bytes]:
    catalog = load_api_catalog()
    if options.apis is not None:
        missing = sorted(set(options.apis) - set(catalog))
        if missing:
            raise ValueError(f"APIs {missing} are not in the catalog")
        pool = {api: catalog[api] for api in options.apis}
    else:
        pool = dict(catalog)
    drops = _Drops()
    for failure in failures:
        drops.add(failure.id, None, "conversion", failure.reason)
    by_id = {p.id: p for p in problems}
    if len(by_id) != len(problems):
        raise ValueError("duplicate problem ids in the source")

    log.info("mining API uses in %d problems", len(problems))
    uses = _mine(problems)
    pairs = _make_pairs(problems, uses, pool, drops)
    log.info("%d (problem, API) candidate pairs rewritten for %d catalog APIs", len(pairs), len(pool))

    checks: list[Check] = [baseline_check(p, options.timeout_s) for p in problems]
    for pair in pairs:
        checks.extend(pair_checks(pair.problem, pair.entry, pair.reference_new, options.timeout_s))
    log.info("validating %d tasks in the sandbox", len(checks))
    outcomes = run_checks(checks, workers=options.workers, jail=options.jail, progress="validate")
    records_validation = [validation_record(c, r) for c, r in outcomes]
    ok = {(c.check, c.problem_id, c.api): c.passed(r) for c, r in outcomes}
    failed_reason = {(c.check, c.problem_id, c.api): c.reason(r) for c, r in outcomes if not c.passed(r)}
    baseline_ok = {p.id for p in problems if ok[("baseline", p.id, None)]}
    for p in problems:
        if p.id not in baseline_ok:
            drops.add(p.id, None, "baseline", failed_reason[("baseline", p.id, None)])

    valid: dict[str, set[str]] = {}
    pair_of: dict[tuple[str, str], _Pair] = {}
    for pair in pairs:
        pid, api = pair.problem.id, pair.entry.api
        if pid not in baseline_ok:
            continue
        for stage in ("original", "rewritten"):
            if not ok[(stage, pid, api)]:
                drops.add(pid, api, stage, failed_reason[(stage, pid, api)])
                break
        else:
            valid.setdefault(api, set()).add(pid)
            pair_of[(pid, api)] = pair

    selection = split(valid, options.n_apis, options.n_api_problems, options.reliability_fraction)
    selected = set(selection.apis)
    candidates = [pid for pid in sorted(baseline_ok) if not (set(uses[pid]) & selected)]
    entries = [catalog[api] for api in selection.apis]
    spec_checks = [specificity_check(by_id[pid], entries, options.timeout_s) for pid in hash_order(candidates)]
    log.info("validating %d specificity candidates with the %d selected APIs removed", len(spec_checks), len(entries))
    spec_outcomes = run_checks(spec_checks, workers=options.workers, jail=options.jail, progress="specificity")
    records_validation.extend(validation_record(c, r) for c, r in spec_outcomes)
    spec_ok = []
    for check, result in spec_outcomes:
        if check.passed(result):
            spec_ok.append(check.problem_id)
        else:
            drops.add(check.problem_id, None, "specificity", check.reason(result))
    selection.specificity = pick_specificity(spec_ok, options.n_specificity)

    records: list[dict] = []
    for api in selection.apis:
        for pid in selection.reliability[api]:
            pair = pair_of[(pid, api)]
            request = make_request(
                options.template, api, pair.problem.prompt, pair.reference_new, _first_site(pair.sites),
                options.max_prompt_chars,
            )
            records.append(_record(pair.problem, "reliability", pair, request.to_dict()))
        for pid in selection.generalization[api]:
            records.append(_record(by_id[pid], "generalization", pair_of[(pid, api)], None))
    for pid in selection.specificity:
        records.append(_record(by_id[pid], "specificity", None, None))

    catalog_json = {api: catalog[api].to_json() for api in sorted(selection.apis)}
    stats = build_stats(
        records=records,
        selection=selection,
        catalog=catalog,
        valid=valid,
        uses=uses,
        problems=problems,
        drops=drops.sorted(),
        options=options.keyed(),
    )
    records_validation.sort(key=lambda r: r["id"])
    return {
        "benchmark.jsonl": _jsonl(records),
        "catalog.json": _json(catalog_json),
        "stats.json": _json(stats),
        "validation.jsonl": _jsonl(records_validation),
    }


def build_benchmark(source: str = "demo", out_dir: str | Path = "benchmark", **options) -> Path:
    """Build (or reuse from cache) the benchmark of `source` into `out_dir`; returns `out_dir`.

    `source`: `demo`, `hub` or `local:PATH`. `options`: the fields of `BuildOptions`.
    """
    started = time.monotonic()
    opts = BuildOptions.for_source(source, **options)
    out = Path(out_dir)
    problems, failures = load_source(source)
    key = cache_key(problems, failures, opts)
    if not opts.force:
        manifest = read_manifest(out)
        if manifest is not None and manifest.get("cache_key") == key:
            log.info("benchmark in %s is up to date (key %s)", out, key)
            return out
        if opts.cache_dir:
            cached = Path(opts.cache_dir) / key
            manifest = read_manifest(cached)
            if manifest is not None and manifest.get("cache_key") == key:
                log.info("benchmark taken from the cache %s", cached)
                write_directory(out, _read_contents(cached), key)
                return out
    log.info("building the %s benchmark (key %s) from %d problems", source, key, len(problems))
    contents = build_contents(problems, failures, opts)
    write_directory(out, contents, key)
    if opts.cache_dir:
        try:
            write_directory(Path(opts.cache_dir) / key, contents, key)
        except OSError as exc:
            log.warning("could not write the benchmark cache %s: %s", opts.cache_dir, exc)
    log.info("benchmark built in %.1f s: %s", time.monotonic() - started, out)
    return out


def load_benchmark(directory: str | Path) -> list[dict]:
    """The problem records of a built benchmark directory (checked against its manifest)."""
    directory = Path(directory)
    if read_manifest(directory) is None:
        raise FileNotFoundError(f"{directory} holds no complete benchmark (missing or corrupt manifest/files)")
    with open(directory / "benchmark.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_catalog(directory: str | Path) -> dict:
    """The `catalog.json` of a built benchmark directory: {api: entry}."""
    directory = Path(directory)
    if read_manifest(directory) is None:
        raise FileNotFoundError(f"{directory} holds no complete benchmark (missing or corrupt manifest/files)")
    return json.loads((directory / "catalog.json").read_text())


def load_stats(directory: str | Path) -> dict:
    return json.loads((Path(directory) / "stats.json").read_text())
