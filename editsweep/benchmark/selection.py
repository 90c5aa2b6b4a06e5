"""Selection and split: which APIs, which problem goes to which API, and into which subset.

The rule (deterministic; every ordering below ends in a total order, never in dict order):

1. Input: for each catalog API, the problems *valid* for it — the API is called in the
   reference (not in the prompt), the rewriter handles every use, the rewritten solution
   passes all its tests in the sandbox with the API removed and the replacement installed,
   and the original fails there at the compile level.
2. Eligible APIs have at least 2 valid problems (one reliability, one generalization).
3. APIs are ranked by number of valid problems (descending), then by name; the first
   `n_apis` are selected (all eligible ones when `n_apis` is None).
4. Tie rule: a problem valid for several selected APIs is assigned to the one with the fewest
   valid problems (the rarest, so small APIs keep their problems), then by name.
5. An API left with fewer than 2 assigned problems is replaced by the next ranked eligible
   API and steps 4-5 repeat until stable (or the ranking runs out).
6. Size: when `n_api_problems` is set, each API keeps at most C problems, with C the smallest
   cap that reaches the target; the surplus is removed one problem at a time from the largest
   APIs (ties by name) so the total equals the target. Within an API, problems are kept in
   *hash order*: sha256("editsweep-benchmark/" + problem id), a fixed shuffle that mixes
   HumanEval and MBPP without depending on file order.
7. Split: per API, reliability gets floor(n·f) problems (f = `reliability_fraction`, default
   259/587, the paper's), clamped to [1, n-1]; the leftover reliability slots up to
   round(total·f) go to the APIs with the largest fractional parts (ties by name), never
   taking an API's last generalization problem. Within an API the first problems in hash
   order are reliability.
8. Specificity: problems that use none of the selected APIs anywhere in their solution and
   pass all tests with every selected API removed, in hash order, the first
   `n_specificity` (all when None).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

HASH_SALT = "editsweep-benchmark/"
PAPER = {"n_problems": 797, "n_apis": 65, "reliability": 259, "generalization": 328, "specificity": 210}
PAPER_RELIABILITY_FRACTION = PAPER["reliability"] / (PAPER["reliability"] + PAPER["generalization"])


def hash_key(problem_id: str) -> str:
    return hashlib.sha256((HASH_SALT + problem_id).encode()).hexdigest()


def hash_order(problem_ids) -> list[str]:
    return sorted(problem_ids, key=lambda pid: (hash_key(pid), pid))


@dataclass
class Selection:
    apis: list[str]
    assignment: dict[str, str]  # problem id -> api
    reliability: dict[str, list[str]]  # api -> problem ids
    generalization: dict[str, list[str]]
    specificity: list[str] = field(default_factory=list)
    excluded_by_cap: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def rank_apis(valid: dict[str, set[str]]) -> list[str]:
    eligible = [api for api, problems in valid.items() if len(problems) >= 2]
    return sorted(eligible, key=lambda api: (-len(valid[api]), api))


def assign(valid: dict[str, set[str]], apis: list[str]) -> dict[str, str]:
    """Each problem valid for a selected API → the rarest such API (then by name)."""
    chosen = set(apis)
    assignment: dict[str, str] = {}
    by_problem: dict[str, list[str]] = {}
    for api in chosen:
        for pid in valid[api]:
            by_problem.setdefault(pid, []).append(api)
    for pid, options in by_problem.items():
        assignment[pid] = min(options, key=lambda api: (len(valid[api]), api))
    return assignment


def select_apis(valid: dict[str, set[str]], n_apis: int | None) -> tuple[list[str], dict[str, str], list[str]]:
    """Steps 3-5: the selected APIs (in rank order) and the assignment of problems to them."""
    ranking = rank_apis(valid)
    notes: list[str] = []
    target = len(ranking) if n_apis is None else n_apis
    if target > len(ranking):
        notes.append(f"only {len(ranking)} APIs have 2 or more valid problems; {target} were asked for")
        target = len(ranking)
    selected = ranking[:target]
    next_index = target
    while True:
        assignment = assign(valid, selected)
        counts = {api: 0 for api in selected}
        for api in assignment.values():
            counts[api] += 1
        short = sorted(api for api, n in counts.items() if n < 2)
        if not short:
            break
        for api in short:
            selected.remove(api)
            notes.append(f"{api}: fewer than 2 problems after the tie rule, replaced")
        while len(selected) < target and next_index < len(ranking):
            selected.append(ranking[next_index])
            next_index += 1
        if not selected:
            break
    selected.sort(key=lambda api: (-len(valid[api]), api))
    return selected, assignment, notes


def cap_sizes(sizes: dict[str, int], target: int | None) -> dict[str, int]:
    """Step 6: how many problems each API keeps so that the total equals `target` (or all)."""
    total = sum(sizes.values())
    if target is None or total <= target:
        return dict(sizes)
    floor_per_api = 2
    cap = max(floor_per_api, 1)
    while sum(min(n, cap) for n in sizes.values()) < target:
        cap += 1
    kept = {api: min(n, cap) for api, n in sizes.items()}
    surplus = sum(kept.values()) - target
    for api in sorted(kept, key=lambda a: (-kept[a], a)):
        if surplus <= 0:
            break
        if kept[api] == cap and kept[api] > floor_per_api:
            kept[api] -= 1
            surplus -= 1
    return kept


def reliability_counts(sizes: dict[str, int], fraction: float) -> dict[str, int]:
    """Step 7: reliability problems per API (largest remainder towards round(total·fraction))."""
    counts = {api: min(max(math.floor(n * fraction), 1), n - 1) for api, n in sizes.items()}
    goal = round(sum(sizes.values()) * fraction)
    remainders = sorted(sizes, key=lambda api: (-(sizes[api] * fraction - math.floor(sizes[api] * fraction)), api))
    for api in remainders:
        if sum(counts.values()) >= goal:
            break
        if counts[api] < sizes[api] - 1:
            counts[api] += 1
    return counts


def split(
    valid: dict[str, set[str]],
    n_apis: int | None,
    n_api_problems: int | None,
    reliability_fraction: float = PAPER_RELIABILITY_FRACTION,
) -> Selection:
    apis, assignment, notes = select_apis(valid, n_apis)
    members: dict[str, list[str]] = {api: [] for api in apis}
    for pid in hash_order(assignment):
        members[assignment[pid]].append(pid)
    kept = cap_sizes({api: len(pids) for api, pids in members.items()}, n_api_problems)
    excluded = sorted(pid for api in apis for pid in members[api][kept[api]:])
    members = {api: pids[: kept[api]] for api, pids in members.items()}
    n_reliability = reliability_counts(kept, reliability_fraction)
    return Selection(
        apis=apis,
        assignment={pid: api for api, pids in members.items() for pid in pids},
        reliability={api: pids[: n_reliability[api]] for api, pids in members.items()},
        generalization={api: pids[n_reliability[api]:] for api, pids in members.items()},
        excluded_by_cap=excluded,
        notes=notes,
    )


def pick_specificity(candidates: list[str], n_specificity: int | None) -> list[str]:
    ordered = hash_order(candidates)
    return ordered if n_specificity is None else ordered[:n_specificity]
