"""The three per-sample levels (compile, partial, full) and the partial credit of one sample.

- compile: parsed, passed the deprecation check, module body ran, entry point exists. The
  sandbox's ``compiled`` flag is used when present; otherwise it is derived from the status.
- partial: at least one *scored* test statement passed (``tests_passed >= 1``); statements that
  do not involve the candidate are never scored, so ``assert True`` earns nothing.
- full: the status is ``passed`` (every scored test passed and the sample did not exit early).
"""

from __future__ import annotations

from typing import Any, Mapping

from editsweep.scoring.status import COMPILED_STATUSES, EXCLUDED_STATUSES, Status

LEVELS = ("compile", "partial", "full")


def status_of(sample: Mapping[str, Any]) -> Status:
    """The sample's status as a :class:`Status`; ``ValueError`` naming it if it is not one."""
    raw = sample.get("status")
    try:
        return Status(raw)
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise ValueError(f"unknown status {raw!r} (expected one of: {allowed})") from None


def is_valid(sample: Mapping[str, Any]) -> bool:
    """Whether the sample counts towards model metrics (a harness error does not)."""
    return status_of(sample) not in EXCLUDED_STATUSES


def compiled(sample: Mapping[str, Any]) -> bool:
    flag = sample.get("compiled")
    if flag is None:
        return status_of(sample) in COMPILED_STATUSES
    return bool(flag)


def partially_passed(sample: Mapping[str, Any]) -> bool:
    return int(sample.get("tests_passed") or 0) >= 1


def fully_passed(sample: Mapping[str, Any]) -> bool:
    return status_of(sample) is Status.PASSED


def sample_levels(sample: Mapping[str, Any]) -> dict[str, bool]:
    """``{"compile": bool, "partial": bool, "full": bool}`` for one sample."""
    return {"compile": compiled(sample), "partial": partially_passed(sample), "full": fully_passed(sample)}


def partial_credit(sample: Mapping[str, Any]) -> float | None:
    """``tests_passed / tests_total``; None when the problem has no scored test (nothing to credit)."""
    total = int(sample.get("tests_total") or 0)
    if total <= 0:
        return None
    passed = int(sample.get("tests_passed") or 0)
    if not 0 <= passed <= total:
        raise ValueError(f"tests_passed={passed} is outside 0..tests_total={total}")
    return passed / total
