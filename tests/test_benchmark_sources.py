"""Sources: checksums and record counts of the local files, MBPP → HumanEval form, demo set."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from editsweep.benchmark.demo import DEMO_APIS, load_demo_problems, training_texts
from editsweep.benchmark.sources import (
    HUMANEVAL_FILE,
    MBPP_FILE,
    SourceError,
    load_source,
    parse_source_spec,
    quiet_source_warnings,
)

SHARED_DATA = Path(os.environ.get("EDITSWEEP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="module")
def local_problems():
    return load_source(f"local:{SHARED_DATA}")


def test_local_sources_have_the_documented_sizes(local_problems):
    problems, failures = local_problems
    assert failures == []
    by_source = {s: [p for p in problems if p.source == s] for s in ("humaneval", "mbpp")}
    assert len(by_source["humaneval"]) == 164 and len(by_source["mbpp"]) == 974
    assert len({p.id for p in problems}) == 1138


def test_every_problem_is_in_humaneval_form(local_problems):
    problems, _ = local_problems
    with quiet_source_warnings():  # MBPP solutions hold invalid escape sequences
        for problem in problems:
            problem.check_well_formed()
            assert problem.solution == problem.prompt + problem.reference
            assert any(problem.entry_point in t or "candidate" in t for t in problem.tests)
    mbpp_11 = next(p for p in problems if p.id == "mbpp/11")
    assert mbpp_11.prompt.rstrip().endswith('"""') and "def remove_Occ(s,ch):" in mbpp_11.prompt
    assert "\r" not in mbpp_11.solution and mbpp_11.tests[0].startswith("assert remove_Occ(")
    he0 = next(p for p in problems if p.id == "humaneval/0")
    assert "candidate = has_close_elements" in he0.tests


def _copy_sources(tmp_path: Path) -> Path:
    for f in (HUMANEVAL_FILE, MBPP_FILE):
        shutil.copy(SHARED_DATA / f.name, tmp_path / f.name)
        os.chmod(tmp_path / f.name, 0o644)
    return tmp_path


def test_missing_file_names_the_file_and_expectation(tmp_path):
    folder = _copy_sources(tmp_path)
    (folder / MBPP_FILE.name).unlink()
    with pytest.raises(SourceError, match=r"mbpp\.jsonl is missing \(expected 974 records, sha256 ccf64cea"):
        load_source(f"local:{folder}")


def test_corrupt_file_names_the_file_and_checksum(tmp_path):
    folder = _copy_sources(tmp_path)
    path = folder / HUMANEVAL_FILE.name
    lines = gzip.open(path, "rt").read().splitlines(keepends=True)
    with gzip.open(path, "wt") as handle:
        handle.writelines(lines[:-1])  # one record short
    with pytest.raises(SourceError, match=r"HumanEval\.jsonl\.gz is corrupt: sha256 .* expected b796127e.*164 records"):
        load_source(f"local:{folder}")


def test_missing_folder_and_bad_spec():
    with pytest.raises(SourceError, match="does not exist"):
        load_source("local:/nonexistent/editsweep-data")
    with pytest.raises(SourceError, match="unknown benchmark source"):
        parse_source_spec("github")


def test_demo_problems_are_original_short_and_pass_their_tests():
    problems = load_demo_problems()
    assert len(problems) >= 40 and len({p.id for p in problems}) == len(problems)
    for problem in problems:
        body_lines = [line for line in problem.reference.splitlines() if line.strip()]
        assert 1 <= len(body_lines) <= 6, problem.id
        namespace: dict = {}
        exec(problem.solution, namespace)  # our own code, written for the project
        for test in problem.tests:
            exec(test, namespace)
    assert training_texts() == [p.prompt + p.reference for p in problems]
    assert len(DEMO_APIS) == 8
