"""pass@k with the unbiased estimator (Chen et al. 2021) and a seeded bootstrap over problems.

For a problem with ``n`` samples of which ``c`` pass, ``pass@k = 1 - C(n-c, k) / C(n, k)``:
the chance that at least one of ``k`` samples drawn without replacement passes. It is computed
in the product form ``1 - prod_{i=n-c+1..n} (1 - k/i)``, which never builds the binomials and so
stays exact where they overflow a float.
"""

from __future__ import annotations

import math
import random
from typing import Iterable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem from ``n`` samples with ``c`` passing.

    ``ValueError`` if ``n < k`` (the estimator needs at least ``k`` samples), or if the counts
    are not integers with ``0 <= c <= n`` and ``k >= 1``.
    """
    for label, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"pass_at_k: {label} must be an int, got {value!r}")
    if k < 1:
        raise ValueError(f"pass_at_k: k must be >= 1, got k={k}")
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if n < k:
        raise ValueError(f"pass_at_k: n={n} samples is fewer than k={k}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> tuple[float | None, int]:
    """Mean pass@k over problems given ``(n, c)`` per problem.

    Problems with fewer than ``k`` samples cannot be scored at ``k``: they are left out and
    counted. Returns ``(mean or None if no problem qualifies, number of problems left out)``.
    """
    values, short = [], 0
    for n, c in counts:
        if n < k:
            short += 1
        else:
            values.append(pass_at_k(n, c, k))
    return (sum(values) / len(values) if values else None), short


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-problem ``values`` (e.g. pass@5 each).

    Problems are resampled with replacement; the same ``seed`` gives the same interval.
    """
    if not values:
        raise ValueError("bootstrap_ci: no values to resample")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bootstrap_ci: confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"bootstrap_ci: n_resamples must be >= 1, got {n_resamples}")
    rng = random.Random(seed)
    size = len(values)
    means = sorted(sum(rng.choices(values, k=size)) / size for _ in range(n_resamples))
    tail = (1.0 - confidence) / 2.0
    low = means[max(0, math.floor(tail * n_resamples))]
    high = means[min(n_resamples - 1, math.ceil((1.0 - tail) * n_resamples) - 1)]
    return low, high


def pass_at_k_ci(
    counts: Iterable[tuple[int, int]], k: int, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap interval of mean pass@k over the problems with at least ``k`` samples."""
    values = [pass_at_k(n, c, k) for n, c in counts if n >= k]
    if not values:
        raise ValueError(f"pass_at_k_ci: no problem has at least k={k} samples")
    return bootstrap_ci(values, confidence=confidence, n_resamples=n_resamples, seed=seed)
