"""Benchmark statistics (`stats.json`) and their table beside the paper's figures."""

from __future__ import annotations

from collections import Counter

from editsweep.benchmark.selection import PAPER

SUBSETS = ("reliability", "generalization", "specificity")


def _mining_summary(uses: dict, problems: list) -> dict:
    """How many APIs of each kind the reference solutions call, and in how many problems."""
    from editsweep.apis import parse_api

    per_api: Counter = Counter()
    problems_by_kind: dict[str, set] = {"module": set(), "builtin": set(), "method": set()}
    for problem in problems:
        for api, use in uses[problem.id].items():
            if use.in_prompt:
                continue
            per_api[api] += 1
            problems_by_kind[parse_api(api).kind].add(problem.id)
    kinds = {}
    for kind, pids in problems_by_kind.items():
        apis = [a for a in per_api if parse_api(a).kind == kind]
        kinds[kind] = {
            "apis": len(apis),
            "apis_in_2_or_more_problems": sum(1 for a in apis if per_api[a] >= 2),
            "problems": len(pids),
        }
    return {"by_kind": kinds, "problems_with_no_candidate_call": sum(1 for p in problems if not any(not u.in_prompt for u in uses[p.id].values()))}


def build_stats(records, selection, catalog, valid, uses, problems, drops, options) -> dict:
    subsets = Counter(r["subset"] for r in records)
    per_api = {}
    for api in selection.apis:
        per_api[api] = {
            "kind": catalog[api].kind,
            "new_api": catalog[api].new_api,
            "reliability": len(selection.reliability[api]),
            "generalization": len(selection.generalization[api]),
            "valid_problems": len(valid.get(api, ())),
        }
    kinds = Counter(catalog[api].kind for api in selection.apis)
    sources = {s: Counter(r["source"] for r in records if r["subset"] == s) for s in SUBSETS}
    dropped_by_stage = Counter(d["stage"] for d in drops)
    in_benchmark = {r["id"] for r in records}
    return {
        "n_problems": len(records),
        "n_apis": len(selection.apis),
        "subsets": {s: subsets.get(s, 0) for s in SUBSETS},
        "paper": dict(PAPER),
        "kinds": {k: kinds.get(k, 0) for k in ("module", "builtin", "method")},
        "sources": {s: dict(sorted(c.items())) for s, c in sources.items()},
        "apis": per_api,
        "n_source_problems": len(problems),
        "n_valid_apis": len(valid),
        "excluded_by_cap": len(selection.excluded_by_cap),
        "selection_notes": selection.notes,
        "mining": _mining_summary(uses, problems),
        "dropped_summary": dict(sorted(dropped_by_stage.items())),
        "n_dropped_problems": len({d["problem_id"] for d in drops} - in_benchmark),
        "dropped": drops,
        "options": options,
    }


def _share(n: int, total: int) -> str:
    return f"{n} ({100 * n / total:.0f}%)" if total else str(n)


def format_stats(stats: dict) -> str:
    """The statistics table beside the paper's (v1) figures, plus kinds and drops."""
    paper = stats.get("paper", PAPER)
    total = stats["n_problems"]
    paper_total = paper["n_problems"]
    rows = [
        ("problems", str(total), str(paper_total)),
        ("distinct APIs", str(stats["n_apis"]), str(paper["n_apis"])),
    ]
    for subset in SUBSETS:
        rows.append((subset, _share(stats["subsets"][subset], total), _share(paper[subset], paper_total)))
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{'':<{width}}{'this build':>14}{'paper (v1)':>14}"]
    lines += [f"{name:<{width}}{ours:>14}{theirs:>14}" for name, ours, theirs in rows]
    api_problems = stats["subsets"]["reliability"] + stats["subsets"]["generalization"]
    if api_problems:
        lines.append(
            f"reliability share of API problems: {100 * stats['subsets']['reliability'] / api_problems:.1f}% "
            f"(paper {100 * paper['reliability'] / (paper['reliability'] + paper['generalization']):.1f}%)"
        )
    kinds = stats.get("kinds", {})
    lines.append("API kinds: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))
    sources = stats.get("sources", {})
    lines.append(
        "sources: " + "; ".join(f"{s} " + ", ".join(f"{k} {v}" for k, v in sources.get(s, {}).items()) for s in SUBSETS)
    )
    dropped = stats.get("dropped_summary", {})
    lines.append(
        "dropped (problem, API) candidates by stage: "
        + (", ".join(f"{k} {v}" for k, v in dropped.items()) if dropped else "none")
    )
    lines.append(f"problems dropped from every subset: {stats.get('n_dropped_problems', 0)}")
    if stats.get("excluded_by_cap"):
        lines.append(f"valid API problems left out to match the paper's size: {stats['excluded_by_cap']}")
    for note in stats.get("selection_notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
