"""Scoring: per-sample status, pass@k at three levels, API adoption and the error taxonomy.

All functions here are pure (no I/O). Public surface:

- ``Status`` (``status.py``): the per-sample status vocabulary shared with the sandbox.
- ``pass_at_k(n, c, k)``, ``mean_pass_at_k(counts, k)``, ``bootstrap_ci(values, ...)``,
  ``pass_at_k_ci(counts, k, ...)`` (``passk.py``).
- ``sample_levels(sample)``, ``partial_credit(sample)``, ``is_valid(sample)`` (``levels.py``).
- ``adoption_class(completion, status, api, new_api, *, prompt, subset, active_new_apis)``
  (``adoption.py``).
- ``error_class(result, program, *, removed_apis, new_apis)``, ``drop_split(baseline, edited, k)``
  (``taxonomy.py``).
- ``summarize(samples, ks=(1, 3, 5))``, ``metric_keys(ks)``, ``problem_counts(samples, level)``
  (``summary.py``; ``pass_at_k_ci(problem_counts(samples, "full"), 5)`` gives the CI of full@5).

Metric keys of ``summarize`` (one evaluation point; harness errors excluded except where said):

=============================  ==============================================================
``n_problems``                 problems with at least one valid sample
``n_samples``                  valid samples (status not ``harness_error``)
``n_harness_errors``           samples left out as harness errors
``compile@k``                  mean unbiased pass@k, level compile (k = 1, 3, 5)
``partial@k``                  same, level partial (>= 1 scored test passed)
``full@k``                     same, level full (status ``passed``)
``n_problems_below@k``         problems with fewer than k valid samples, left out of ``*@k``
``partial_credit``             mean over problems of mean tests_passed / tests_total
``n_adoption_samples``         samples with an API-problem adoption class
``adoption/correct_adoption``  share of those samples; likewise ``adoption/incorrect_adoption``,
                               ``adoption/workaround``, ``adoption/legacy``,
                               ``adoption/other_failure`` (they sum to 1)
``n_specificity_samples``      samples with a specificity class (``spurious_adoption``/``none``)
``spurious_adoption``          share of those that use a new API that was not edited in for them
``n_failing_samples``          valid samples that did not pass fully
``errors/<class>``             count of samples per error class: ``syntax_error``,
                               ``deprecated_api``, ``name_error``, ``wrong_usage``,
                               ``assertion_failure``, ``runtime_error``, ``timeout``,
                               ``memory``, ``crash``
=============================  ==============================================================

A rate whose denominator is empty is ``None`` (not 0), so a table can show "–".
``drop_split`` returns ``total_drop``, ``compile_drop``, ``post_compile_drop``.
"""

from editsweep.scoring.adoption import ADOPTION_CLASSES, API_ADOPTION_CLASSES, SPECIFICITY_CLASSES, adoption_class
from editsweep.scoring.levels import LEVELS, is_valid, partial_credit, sample_levels
from editsweep.scoring.passk import bootstrap_ci, mean_pass_at_k, pass_at_k, pass_at_k_ci
from editsweep.scoring.status import COMPILED_STATUSES, EXCLUDED_STATUSES, Status
from editsweep.scoring.summary import DEFAULT_KS, metric_keys, problem_counts, summarize
from editsweep.scoring.taxonomy import ERROR_CLASSES, drop_split, error_class

__all__ = [
    "ADOPTION_CLASSES", "API_ADOPTION_CLASSES", "COMPILED_STATUSES", "DEFAULT_KS", "ERROR_CLASSES",
    "EXCLUDED_STATUSES", "LEVELS", "SPECIFICITY_CLASSES", "Status", "adoption_class", "bootstrap_ci",
    "drop_split", "error_class", "is_valid", "mean_pass_at_k", "metric_keys", "partial_credit",
    "pass_at_k", "pass_at_k_ci", "problem_counts", "sample_levels", "summarize",
]
