"""`editsweep report` on a synthetic sweep whose numbers were computed by hand.

The sweep (model tiny-coder, data demo) has 10 expected cells: the baselines (method none) for
reliability and specificity, and rome / memit x instant / sequential x the two subsets. Two are
missing, one failed (error.txt, with committed samples for one problem and an uncommitted step),
one is in progress (steps 1-2 committed, step 3 not). Each problem is evaluated with 5 samples
given as letters:

  P passed (2/2 tests)   F failed, 1/2 tests   Z failed, 0/2   S syntax error   D deprecated API
  H harness error (excluded from every metric)

For n = 5: pass@1 = c/5; pass@3 = 0, .6, .9, 1, 1, 1 for c = 0..5; pass@5 = 1 if c >= 1.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from editsweep import cli
from editsweep.report import build_report
from editsweep.report.cells import ReportInputError, discover
from editsweep.scoring import summarize

MODEL = "tiny-coder"
SAMPLE = {
    "P": ("passed", True, 2), "F": ("failed", True, 1), "Z": ("failed", True, 0),
    "S": ("syntax_error", False, 0), "D": ("deprecated_api", False, 0), "H": ("harness_error", False, 0),
}
ERROR = {"P": None, "F": "assertion_failure", "Z": "assertion_failure", "S": "syntax_error",
         "D": "deprecated_api", "H": None}
ADOPTION = {"c": "correct_adoption", "i": "incorrect_adoption", "w": "workaround", "l": "legacy",
            "o": "other_failure", "s": "spurious_adoption", "n": "none", "-": None}


def samples_of(step: int, problem: str, subset: str, statuses: str, adoptions: str, n_edits: int | None = None):
    """The samples.jsonl rows of one problem at one step."""
    assert len(statuses) == len(adoptions)
    rows = []
    for index, (letter, adopt) in enumerate(zip(statuses, adoptions)):
        status, compiled, passed = SAMPLE[letter]
        rows.append({
            "step": step, "n_edits": step if n_edits is None else n_edits, "problem_id": problem, "subset": subset,
            "api": None if subset == "specificity" else "re.search",
            "new_api": None if subset == "specificity" else "my_re_search", "sample": index,
            "completion": f"    return {letter}\n", "status": status, "compiled": compiled,
            "tests_passed": passed, "tests_total": 2, "error_type": None, "error_message": None,
            "adoption": ADOPTION[adopt], "error_class": ERROR[letter], "duration_s": 0.01,
        })
    return rows


def cell_summary(regime: str, rows: list[dict]) -> dict:
    """result.json "metrics" as the cell means it (editsweep.regimes.final_metrics): per subset,
    scoring.summarize over every step with a problem counted once per step (instant), or over the
    last evaluation point (sequential)."""
    if regime == "sequential":
        last = max(r["step"] for r in rows)
        rows = [r for r in rows if r["step"] == last]
    else:
        rows = [{**r, "problem_id": f"{r['step']}/{r['problem_id']}", "step": 0} for r in rows]
    return {subset: summarize([r for r in rows if r["subset"] == subset])
            for subset in sorted({r["subset"] for r in rows})}


def write_cell(root: Path, name: str, method: str, regime: str, subset: str, units: list[list[dict]], *,
               last_step: int | None, state: str = "done", error: str | None = None, seed: int = 0) -> Path:
    """A cell directory as editsweep.store writes it."""
    path = root / name
    path.mkdir(parents=True)
    (path / "cell.json").write_text(json.dumps({
        "cell_id": name, "model": MODEL, "method": method, "regime": regime, "subset": subset, "data": "demo",
        "seed": seed, "config": {}}))
    rows = [row for unit in units for row in unit]
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    steps = sorted({r["step"] for r in rows if last_step is None or r["step"] <= last_step})
    (path / "edits.jsonl").write_text("".join(json.dumps({"step": s, "apis": ["re.search"], "n_requests": 1,
                                                          "seconds": 0.1, "peak_mem_gb": 0.0}) + "\n"
                                              for s in steps if method != "none"))
    if last_step is not None:
        (path / "progress.json").write_text(json.dumps({"last_step": last_step, "units": len(steps)}))
    if state == "done":  # the cell's own summary, as editsweep.cell writes it
        (path / "result.json").write_text(json.dumps({"cell_id": name, "n_samples": len(rows),
                                                      "metrics": cell_summary(regime, rows)}))
    if error is not None:
        (path / "error.txt").write_text(error)
    return path


def build_sweep(root: Path) -> Path:
    R, G = "reliability", "specificity"  # noqa: N806 (short names keep the table below readable)
    write_cell(root, "a_none_instant_rel", "none", "instant", R, [
        samples_of(0, "p1", R, "PPPFZ", "wwwoo"),
        samples_of(1, "p2", R, "PPPPPH", "wwwww-"),
    ], last_step=1)
    write_cell(root, "b_none_instant_spec", "none", "instant", G, [
        samples_of(0, "s1", G, "PPPPZ", "nnnnn"), samples_of(0, "s2", G, "PPZZS", "nnnnn"),
        samples_of(1, "s1", G, "PPPPZ", "nnnnn"), samples_of(1, "s2", G, "PPZZS", "nnnnn"),
    ], last_step=1)
    write_cell(root, "c_rome_instant_rel", "rome", "instant", R, [
        samples_of(0, "p1", R, "PFSDD", "cioll"),
        samples_of(1, "p2", R, "FFZZS", "iooll"),
    ], last_step=1)
    write_cell(root, "d_rome_instant_spec", "rome", "instant", G, [
        samples_of(0, "s1", G, "PPPZZ", "snnnn"), samples_of(0, "s2", G, "PZZSS", "nnnnn"),
        samples_of(1, "s1", G, "PPPPP", "nnnnn"), samples_of(1, "s2", G, "PPZSS", "ssnnn"),
    ], last_step=1)
    write_cell(root, "e_memit_instant_rel", "memit", "instant", R, [
        samples_of(0, "p1", R, "PPSSS", "cclll"),
        samples_of(1, "p2", R, "PPPPP", "ccccc"),  # written after the last commit: must not count
    ], last_step=0, state="failed",
        error="Traceback (most recent call last):\n  File \"cell.py\", line 1\nRuntimeError: CUDA out of memory while editing\n")
    write_cell(root, "g_rome_seq_rel", "rome", "sequential", R, [
        samples_of(1, "p1", R, "PPPZS", "cwwol"),
        samples_of(2, "p1", R, "PFZSS", "cioll"), samples_of(2, "p2", R, "PPFZS", "ccilo"),
        samples_of(3, "p1", R, "SS", "ll"),  # step 3 not committed yet
    ], last_step=2, state="in progress")
    write_cell(root, "h_rome_seq_spec", "rome", "sequential", G, [
        samples_of(1, "s1", G, "PPPPP", "nnnnn"), samples_of(1, "s2", G, "PPPPZ", "nnnnn"),
        samples_of(2, "s1", G, "PPPZZ", "sssnn"), samples_of(2, "s2", G, "SSSSS", "nnnnn"),
    ], last_step=2)
    write_cell(root, "i_memit_seq_rel", "memit", "sequential", R, [
        samples_of(1, "p1", R, "PPPPP", "ccccc"),
        samples_of(2, "p1", R, "PPPPZ", "cccco"), samples_of(2, "p2", R, "PPPZZ", "cccio"),
    ], last_step=2)
    # memit x instant x specificity and memit x sequential x specificity are missing
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    sweep = build_sweep(tmp_path_factory.mktemp("sweep"))
    out = tmp_path_factory.mktemp("out")
    assert cli.main(["report", str(sweep), "--out", str(out)]) == 0
    return sweep, out


def read_csv(out: Path, name: str) -> list[dict]:
    with (out / "tables" / f"{name}.csv").open() as handle:
        return list(csv.DictReader(handle))


def pick(rows, **where) -> dict:
    found = [r for r in rows if all(r[k] == v for k, v in where.items())]
    assert len(found) == 1, (where, found)
    return found[0]


def assert_values(row: dict, expected: dict) -> None:
    for column, value in expected.items():
        if value is None:
            assert row[column] == "", (column, row[column])
        elif isinstance(value, str):
            assert row[column] == value, (column, row[column], value)
        else:
            assert float(row[column]) == pytest.approx(value, abs=1e-6), (column, row[column], value)


def test_cell_states_and_missing_cells(report):
    sweep, out = report
    cells = read_csv(out, "cells")
    states = {(c["method"], c["regime"], c["subset"]): c["state"] for c in cells}
    assert states == {
        ("none", "instant", "reliability"): "done", ("none", "instant", "specificity"): "done",
        ("rome", "instant", "reliability"): "done", ("rome", "instant", "specificity"): "done",
        ("memit", "instant", "reliability"): "failed", ("memit", "instant", "specificity"): "missing",
        ("rome", "sequential", "reliability"): "in progress", ("rome", "sequential", "specificity"): "done",
        ("memit", "sequential", "reliability"): "done", ("memit", "sequential", "specificity"): "missing",
    }
    failed = pick(cells, method="memit", regime="instant", subset="reliability")
    assert failed["error"] == "RuntimeError: CUDA out of memory while editing"
    assert failed["n_samples"] == "5" and failed["uncommitted_samples"] == "5"
    running = pick(cells, method="rome", regime="sequential", subset="reliability")
    assert running["last_committed_step"] == "2" and running["uncommitted_samples"] == "2"


def test_rq1_instant_pass_at_k_and_deltas(report):
    _, out = report
    rows = read_csv(out, "rq1_instant")
    base = pick(rows, method="none", subset="reliability")
    assert_values(base, {"n_units": "2", "n_samples": "10", "compile@1": 100, "partial@1": 90, "full@1": 80,
                         "compile@3": 100, "partial@3": 100, "full@3": 100, "full@5": 100, "delta/full@1": None})
    rome = pick(rows, method="rome", subset="reliability")
    assert_values(rome, {
        "state": "done", "n_units": "2", "n_matched_units": "2", "baseline_cell": "a_none_instant_rel",
        "compile@1": 60, "partial@1": 40, "full@1": 10, "compile@3": 95, "partial@3": 90, "full@3": 30,
        "compile@5": 100, "partial@5": 100, "full@5": 50,
        "delta/compile@1": -40, "delta/partial@1": -50, "delta/full@1": -70, "delta/compile@3": -5,
        "delta/partial@3": -10, "delta/full@3": -70, "delta/compile@5": 0, "delta/full@5": -50,
        "partial_credit": 25,  # mean of (P 1 + F .5 + S 0 + D 0 + D 0)/5 = .3 and (F .5 + F .5)/5 = .2
    })
    spec = pick(rows, method="rome", subset="specificity")
    assert_values(spec, {"n_units": "4", "compile@1": 80, "partial@1": 55, "full@1": 55,
                         "delta/compile@1": -10, "delta/partial@1": -5, "delta/full@1": -5})
    # the failed cell: its committed problem only, compared with the baseline on that problem alone
    memit = pick(rows, method="memit", subset="reliability")
    assert_values(memit, {"state": "failed", "n_units": "1", "n_samples": "5", "n_matched_units": "1",
                          "compile@1": 40, "full@1": 40, "delta/compile@1": -60, "delta/partial@1": -40,
                          "delta/full@1": -20})
    missing = pick(rows, method="memit", subset="specificity")
    assert_values(missing, {"state": "missing", "n_units": "0", "compile@1": None, "delta/full@1": None})


def test_rq2_sequential_curve_with_matched_baseline(report):
    _, out = report
    rows = read_csv(out, "rq2_sequential")
    running = [r for r in rows if r["method"] == "rome" and r["subset"] == "reliability"]
    assert [r["n_edits"] for r in running] == ["1", "2"]  # step 3 is not committed
    assert all(r["state"] == "in progress" for r in running)
    assert_values(running[0], {"compile@1": 80, "partial@1": 60, "full@1": 60, "baseline/full@1": 60,
                               "delta/compile@1": -20, "delta/partial@1": -20, "delta/full@1": 0})
    assert_values(running[1], {"n_units": "2", "compile@1": 70, "partial@1": 50, "full@1": 30,
                               "baseline/compile@1": 100, "baseline/full@1": 80,
                               "delta/compile@1": -30, "delta/partial@1": -40, "delta/full@1": -50})
    spec = [r for r in rows if r["method"] == "rome" and r["subset"] == "specificity"]
    assert_values(spec[0], {"compile@1": 100, "full@1": 90, "delta/compile@1": 10, "delta/full@1": 30})
    assert_values(spec[1], {"compile@1": 50, "partial@1": 30, "full@1": 30, "delta/compile@1": -40,
                            "delta/full@1": -30})
    memit = [r for r in rows if r["method"] == "memit" and r["subset"] == "reliability"]
    assert_values(memit[1], {"compile@1": 100, "partial@1": 70, "full@1": 70, "delta/partial@1": -20,
                             "delta/full@1": -10})
    missing = pick(rows, method="memit", subset="specificity")
    assert_values(missing, {"state": "missing", "n_edits": None, "full@1": None})


def test_rq2_points_equal_scoring_summarize(report):
    """One sequential evaluation point is exactly what scoring.summarize computes for its samples."""
    sweep, out = report
    rows = read_csv(out, "rq2_sequential")
    samples = [json.loads(line) for line in (sweep / "i_memit_seq_rel" / "samples.jsonl").read_text().splitlines()]
    expected = summarize([s for s in samples if s["step"] == 2])
    row = [r for r in rows if r["method"] == "memit" and r["n_edits"] == "2"][0]
    for metric in ("compile", "partial", "full"):
        for k in (1, 3, 5):
            assert float(row[f"{metric}@{k}"]) == pytest.approx(100 * expected[f"{metric}@{k}"], abs=1e-6)
    assert float(row["partial_credit"]) == pytest.approx(100 * expected["partial_credit"], abs=1e-6)


def test_rq1_equals_the_cells_own_summary(report):
    """The report and scoring.summarize over the same units (what result.json holds) agree on finished
    cells, and the report says nothing about a mismatch."""
    sweep, out = report
    rows = read_csv(out, "rq1_instant")
    for name, method, subset in (("c_rome_instant_rel", "rome", "reliability"),
                                 ("d_rome_instant_spec", "rome", "specificity"),
                                 ("a_none_instant_rel", "none", "reliability")):
        stored = json.loads((sweep / name / "result.json").read_text())["metrics"][subset]
        row = pick(rows, method=method, subset=subset)
        for metric in ("compile", "partial", "full"):
            for k in (1, 3, 5):
                assert float(row[f"{metric}@{k}"]) == pytest.approx(100 * stored[f"{metric}@{k}"], abs=1e-6)
    assert "result.json says" not in (out / "report.md").read_text()


def test_a_result_json_that_disagrees_with_its_samples_is_flagged(tmp_path):
    sweep = build_sweep(tmp_path / "sweep")
    path = sweep / "c_rome_instant_rel" / "result.json"
    result = json.loads(path.read_text())
    result["metrics"]["reliability"]["full@1"] = 0.5
    path.write_text(json.dumps(result))
    text = build_report(sweep, tmp_path / "out", figures=False).read_text()
    assert ("model=tiny-coder method=rome regime=instant subset=reliability data=demo seed=0: result.json says "
            "reliability full@1 = 0.500000, its samples give 0.100000") in text


def test_rq3_adoption_shares(report):
    _, out = report
    rows = read_csv(out, "rq3_adoption")
    rome = pick(rows, method="rome", regime="instant", subset="reliability")
    assert_values(rome, {"evaluation": "all steps", "n_adoption_samples": "10", "adoption/correct_adoption": 10,
                         "adoption/incorrect_adoption": 20, "adoption/workaround": 0, "adoption/legacy": 40,
                         "adoption/other_failure": 30, "count/legacy": "4", "spurious_adoption": None})
    spec = pick(rows, method="rome", regime="instant", subset="specificity")
    assert_values(spec, {"n_specificity_samples": "20", "spurious_adoption": 15, "count/spurious_adoption": "3",
                         "n_adoption_samples": "0", "adoption/correct_adoption": None})
    seq = pick(rows, method="rome", regime="sequential", subset="reliability")
    assert_values(seq, {"evaluation": "after 2 edits", "state": "in progress", "adoption/correct_adoption": 30,
                        "adoption/incorrect_adoption": 20, "adoption/legacy": 30, "adoption/other_failure": 20})
    seq_spec = pick(rows, method="rome", regime="sequential", subset="specificity")
    assert_values(seq_spec, {"spurious_adoption": 30})
    base = pick(rows, method="none", subset="reliability")  # the harness error has no class and is not counted
    assert_values(base, {"n_adoption_samples": "10", "adoption/workaround": 80, "adoption/other_failure": 20})
    assert_values(pick(rows, method="memit", regime="instant", subset="specificity"),
                  {"state": "missing", "spurious_adoption": None})


def test_rq4_error_taxonomy_and_drop_split(report):
    _, out = report
    errors = read_csv(out, "rq4_errors")
    rome = pick(errors, method="rome", regime="instant", subset="reliability")
    assert_values(rome, {"n_samples": "10", "n_failing_samples": "9", "errors/assertion_failure": "5",
                         "errors/syntax_error": "2", "errors/deprecated_api": "2", "share/assertion_failure": 500 / 9,
                         "share/syntax_error": 200 / 9, "share/deprecated_api": 200 / 9, "share/timeout": 0})
    seq = pick(errors, method="rome", regime="sequential", subset="reliability")
    assert_values(seq, {"evaluation": "after 2 edits", "n_failing_samples": "7", "share/assertion_failure": 400 / 7,
                        "share/syntax_error": 300 / 7})
    base = pick(errors, method="none", subset="reliability")
    assert_values(base, {"n_samples": "10", "n_failing_samples": "2", "n_harness_errors": "1"})

    drops = read_csv(out, "rq4_drop_split")
    assert {r["method"] for r in drops} == {"rome", "memit"}  # edited cells only
    assert_values(pick(drops, method="rome", regime="instant", subset="reliability"), {
        "baseline/compile@1": 100, "baseline/full@1": 80, "compile@1": 60, "full@1": 10, "total_drop": 70,
        "compile_drop": 40, "post_compile_drop": 30, "compile_share_of_drop": 400 / 7})
    assert_values(pick(drops, method="rome", regime="sequential", subset="reliability"), {
        "evaluation": "after 2 edits", "total_drop": 50, "compile_drop": 30, "post_compile_drop": 20,
        "compile_share_of_drop": 60})
    assert_values(pick(drops, method="memit", regime="instant", subset="specificity"),
                  {"state": "missing", "total_drop": None})


def test_report_md_reads_as_the_tables(report):
    sweep, out = report
    text = (out / "report.md").read_text()
    assert "| 10 | 6 | 1 | 1 | 2 |" in text  # expected, done, in progress, failed, missing
    assert ("- `model=tiny-coder method=memit regime=instant subset=reliability data=demo seed=0` — "
            "RuntimeError: CUDA out of memory while editing") in text
    assert "- `model=tiny-coder method=memit regime=sequential subset=specificity data=demo seed=0`" in text
    assert "| tiny-coder | rome | reliability |  | 2 | 60.0 (-40.0) | 95.0 (-5.0) | 100.0 (0.0) | 40.0 (-50.0) |" in text
    assert "| tiny-coder | memit | reliability | failed | 1 | 40.0 (-60.0) |" in text
    assert "| tiny-coder | memit | specificity | missing | – | – |" in text
    assert "| tiny-coder | rome | instant | reliability |  | all steps | 10 | 10.0 | 20.0 | 0.0 | 40.0 | 30.0 | – |" in text
    assert "| tiny-coder | rome | instant | reliability |  | all steps | 80.0 | 10.0 | +70.0 | +40.0 | +30.0 | 57.1 |" in text
    assert "| tiny-coder | rome | reliability | in progress | 2 | 1–2 | 60.0 | 30.0 | -50.0 | 70.0 | -30.0 | 30.0 |" in text
    assert "*These are the paper's numbers, quoted for context, not computed from this sweep*" in text
    assert "instant: largest change of functional correctness (full pass@1): -70.0 points (tiny-coder, rome, reliability)" in text
    # rome (1 correct of 10) and the failed memit cell's committed problem (2 of 5)
    assert ("correct adoption in 20.0% of 15 API-problem samples of edited cells; 0.0% of the fully passing "
            "ones are workarounds") in text
    assert "5 samples of a unit not committed yet after the last committed step 0" in text
    for figure in sorted((out / "figures").glob("*.png")):
        assert f"(figures/{figure.name})" in text


def test_figures_are_written_and_non_trivial(report):
    _, out = report
    names = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert names == ["rq1_instant_tiny-coder.png", "rq2_sequential_tiny-coder.png", "rq3_adoption_tiny-coder.png",
                     "rq4_failures_tiny-coder.png"]
    import matplotlib.image

    for name in names:
        data = (out / "figures" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, (name, len(data))
        image = matplotlib.image.imread(out / "figures" / name)
        assert image.shape[0] > 300 and image.shape[1] > 600
        assert image[..., :3].std() > 0.05  # not a blank canvas


def test_multirun_axes_add_missing_cells(tmp_path):
    """Options on the command line become the labels their cells carry: learnt from a started cell's
    .hydra/overrides.yaml, or from the option's `name:` in the launch's config directory."""
    sweep = build_sweep(tmp_path / "sweep")
    hydra_dir = sweep / "c_rome_instant_rel" / ".hydra"
    hydra_dir.mkdir()
    (hydra_dir / "overrides.yaml").write_text("- model=tiny_coder\n- method=rome\n- regime=instant\n")
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "other_coder.yaml").write_text("name: other:coder\narch: llama\n")
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task:\n    - model=tiny_coder,other_coder\n    - method=none,rome,memit,pmet\n"
        "    - regime=instant,sequential\n    - subset=reliability,specificity\n"
        f"  runtime:\n    config_sources:\n    - path: {tmp_path / 'conf'}\n      schema: file\n      provider: main\n")
    found = discover(sweep)
    missing = sorted((c.key.model, c.key.method, c.key.regime, c.key.subset) for c in found.cells
                     if c.state == "missing")
    other = [m[1:] for m in missing if m[0] == "other:coder"]
    assert [m[1:] for m in missing if m[0] == MODEL] == [
        ("memit", "instant", "specificity"), ("memit", "sequential", "specificity"),
        ("pmet", "instant", "reliability"), ("pmet", "instant", "specificity"),
        ("pmet", "sequential", "reliability"), ("pmet", "sequential", "specificity")]
    assert len(other) == 2 + 3 * 2 * 2  # its two baselines and every edited cell
    assert {m[0] for m in missing} == {MODEL, "other:coder"}  # no cell expected under the option names
    assert "method=none,rome,memit,pmet" in found.multirun_note


def test_grid_preset_in_sweeper_params_adds_missing_cells(tmp_path):
    """A grid set in config (conf/experiment presets: hydra.sweeper.params) counts like one set on the
    command line; a command-line axis given after it wins."""
    sweep = build_sweep(tmp_path / "sweep")
    hydra_dir = sweep / "c_rome_instant_rel" / ".hydra"
    hydra_dir.mkdir()
    (hydra_dir / "overrides.yaml").write_text("- model=tiny_coder\n- method=rome\n- regime=instant\n")
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  sweeper:\n    params:\n      method: none,rome,memit,pmet\n      regime: instant,sequential\n"
        "      subset: reliability\n  overrides:\n    task:\n    - model=tiny_coder\n"
        "    - subset=reliability,specificity\n")
    found = discover(sweep)
    missing = sorted((c.key.method, c.key.regime, c.key.subset) for c in found.cells if c.state == "missing")
    assert missing == [
        ("memit", "instant", "specificity"), ("memit", "sequential", "specificity"),
        ("pmet", "instant", "reliability"), ("pmet", "instant", "specificity"),
        ("pmet", "sequential", "reliability"), ("pmet", "sequential", "specificity")]


def test_torn_last_line_is_skipped_and_a_bad_line_is_named(tmp_path):
    sweep = build_sweep(tmp_path / "sweep")
    samples = sweep / "g_rome_seq_rel" / "samples.jsonl"
    samples.write_text(samples.read_text() + '{"step": 3, "problem_id": "p')
    out = build_report(sweep, tmp_path / "out", figures=False)
    assert "last line of samples.jsonl was cut off mid-write" in out.read_text()

    samples = sweep / "c_rome_instant_rel" / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines[:3]) + "not json\n" + "".join(lines[3:]))
    with pytest.raises(ReportInputError, match=r"c_rome_instant_rel/samples.jsonl:4: not valid JSON"):
        build_report(sweep, tmp_path / "out2", figures=False)
    assert cli.main(["report", str(sweep), "--out", str(tmp_path / "out3")]) == 2


@pytest.mark.parametrize("change, message", [
    ({"subset": None}, "sample has no subset"),
    ({"step": "x"}, "step 'x' is not an integer"),
    ({"status": "weird"}, "unknown status 'weird'"),
    ({"adoption": "adopted"}, "unknown adoption class 'adopted'"),
    ({"error_class": "oops"}, "unknown error class 'oops'"),
])
def test_a_bad_sample_is_named_by_file_and_line(tmp_path, change, message):
    sweep = build_sweep(tmp_path / "sweep")
    samples = sweep / "c_rome_instant_rel" / "samples.jsonl"
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    rows[2].update(change)  # line 3: the S sample of p1 (a failure, so its error class is checked)
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ReportInputError, match=rf"c_rome_instant_rel/samples.jsonl:3: {message}"):
        build_report(sweep, tmp_path / "out", figures=False)


def test_a_job_killed_before_its_cell_started_is_reported(tmp_path):
    sweep = build_sweep(tmp_path / "sweep")
    lost = sweep / "tiny-coder-pmet-instant-reliability-s0-abc123"
    lost.mkdir()
    (lost / "error.txt").write_text("cell tiny-coder-pmet-instant-reliability-s0-abc123: job 17 ended (CANCELLED) "
                                    "without a result; it was killed from outside.\nlast lines of its stderr:\nslurmstepd: "
                                    "CANCELLED\n")
    (sweep / "report").mkdir()  # an earlier report's output: not a cell
    text = build_report(sweep, None, figures=False).read_text()
    assert (f"{lost}: failed before its cell started (no cell.json): cell tiny-coder-pmet-instant-reliability-s0-abc123: "
            "job 17 ended (CANCELLED) without a result; it was killed from outside.") in text
    assert "report: looks like" not in text


def test_not_a_sweep_directory(tmp_path):
    with pytest.raises(ReportInputError, match="no cell stores found"):
        discover(tmp_path)
    with pytest.raises(ReportInputError, match="not a directory"):
        discover(tmp_path / "absent")


def test_subset_all_cell_covers_every_subset(tmp_path):
    sweep = tmp_path / "sweep"
    write_cell(sweep, "base_all", "none", "instant", "all", [
        samples_of(0, "p1", "reliability", "PPPPP", "wwwww"),
        samples_of(0, "q1", "generalization", "PPPZZ", "wwwoo"),
        samples_of(0, "s1", "specificity", "PZZZZ", "nnnnn"),
    ], last_step=0)
    write_cell(sweep, "rome_rel", "rome", "instant", "reliability", [
        samples_of(0, "p1", "reliability", "PSSSS", "clllo"),
    ], last_step=0)
    out = tmp_path / "out"
    build_report(sweep, out, figures=False)
    rows = read_csv(out, "rq1_instant")
    assert_values(pick(rows, method="none", subset="generalization"), {"full@1": 60})
    assert_values(pick(rows, method="rome", subset="reliability"), {"full@1": 20, "delta/full@1": -80})
    missing = sorted((r["method"], r["subset"]) for r in rows if r["state"] == "missing")
    assert missing == [("rome", "generalization"), ("rome", "specificity")]
    shutil.rmtree(out)


def test_a_sweep_over_seeds_keeps_them_apart(tmp_path):
    sweep = tmp_path / "sweep"
    for seed, statuses in ((0, "PPPPP"), (1, "PPPZZ")):
        write_cell(sweep, f"base{seed}", "none", "instant", "reliability",
                   [samples_of(0, "p1", "reliability", statuses, "wwwoo")], last_step=0, seed=seed)
        write_cell(sweep, f"rome{seed}", "rome", "instant", "reliability",
                   [samples_of(0, "p1", "reliability", "PSSSS", "clllo")], last_step=0, seed=seed)
    out = tmp_path / "out"
    text = build_report(sweep, out).read_text()
    rows = read_csv(out, "rq1_instant")
    assert_values(pick(rows, method="rome", seed="0"), {"delta/full@1": -80, "baseline_cell": "base0"})
    assert_values(pick(rows, method="rome", seed="1"), {"delta/full@1": -40, "baseline_cell": "base1"})
    assert "| model | seed | method | subset |" in text
    assert sorted(p.name for p in (out / "figures").glob("rq1_*.png")) == [
        "rq1_instant_tiny-coder_s0.png", "rq1_instant_tiny-coder_s1.png"]


def test_cells_with_the_same_coordinates_are_told_apart(tmp_path):
    """Cells of an older model version left in the sweep (same labels, another config) are shown
    side by side with their cell ids, and a note says what differs; nothing is pooled."""
    sweep = tmp_path / "sweep"
    write_cell(sweep, "base", "none", "instant", "reliability",
               [samples_of(0, "p1", "reliability", "PPPPP", "wwwww")], last_step=0)
    new = write_cell(sweep, "rome_new", "rome", "instant", "reliability",
                     [samples_of(0, "p1", "reliability", "PPPZZ", "cccll")], last_step=0)
    old = write_cell(sweep, "rome_old", "rome", "instant", "reliability",
                     [samples_of(0, "p1", "reliability", "ZZZZZ", "lllll")], last_step=0)
    for path, weights in ((new, "k2"), (old, "k1")):
        meta = json.loads((path / "cell.json").read_text())
        meta["config"] = {"model": {"name": "tiny:coder", "weights": weights}, "seed": 0}
        (path / "cell.json").write_text(json.dumps(meta))
    out = tmp_path / "out"
    text = build_report(sweep, out).read_text()
    rows = read_csv(out, "rq1_instant")
    assert_values(pick(rows, method="rome", cell_id="rome_new"), {"full@1": 60})
    assert_values(pick(rows, method="rome", cell_id="rome_old"), {"full@1": 0})
    assert "| model | cell_id | method | subset |" in text
    assert "2 cells share these coordinates (cell ids rome_new, rome_old)" in text
    assert "model.weights (k2 / k1)" in text


def test_a_cell_that_has_only_just_started(tmp_path):
    """cell.json written, nothing committed yet: shown as in progress with no numbers, in every table
    and figure, without breaking anything."""
    sweep = tmp_path / "sweep"
    write_cell(sweep, "base", "none", "instant", "reliability",
               [samples_of(0, "p1", "reliability", "PPPZZ", "wwwoo")], last_step=0)
    write_cell(sweep, "rome_inst", "rome", "instant", "reliability",
               [samples_of(0, "p1", "reliability", "SSSSS", "lllll")], last_step=None, state="in progress")
    write_cell(sweep, "rome_seq", "rome", "sequential", "reliability", [], last_step=None, state="in progress")
    out = tmp_path / "out"
    text = build_report(sweep, out).read_text()
    rq1 = pick(read_csv(out, "rq1_instant"), method="rome")
    assert_values(rq1, {"state": "in progress", "n_units": "0", "full@1": None, "delta/full@1": None})
    rq2 = pick(read_csv(out, "rq2_sequential"), method="rome")
    assert_values(rq2, {"state": "in progress", "n_edits": None, "full@1": None})
    assert "5 samples of a unit not committed yet (progress.json) were left out" in text
    assert "last committed step none" in text
    assert len(list((out / "figures").glob("*.png"))) == 4
