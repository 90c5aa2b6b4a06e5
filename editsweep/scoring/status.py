"""The per-sample status vocabulary shared by the sandbox (which decides it) and the scorers.

Order of decision (first that applies): syntax_error, deprecated_api, definition_error,
missing_entry_point, timeout, memory, crashed, failed, passed. `harness_error` means the
infrastructure, not the sample, failed; such samples are retried and excluded from metrics.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    SYNTAX_ERROR = "syntax_error"            # the program does not parse / compile
    DEPRECATED_API = "deprecated_api"        # static check: it uses a removed API
    DEFINITION_ERROR = "definition_error"    # the module body raised (ImportError, NameError, exit …)
    MISSING_ENTRY_POINT = "missing_entry_point"  # no callable entry point after the body ran
    TIMEOUT = "timeout"                      # wall or CPU budget exhausted
    MEMORY = "memory"                        # MemoryError or killed at the memory limit
    CRASHED = "crashed"                      # died early: os._exit, signal, killed its worker twice
    FAILED = "failed"                        # all scored tests ran, some failed
    PASSED = "passed"                        # every scored test passed
    HARNESS_ERROR = "harness_error"          # infrastructure failure: retried, excluded from metrics

    def __str__(self) -> str:  # so f-strings and json.dumps(default=str) give the bare value
        return self.value


#: statuses that count as "compiled": parsed, passed the deprecation check, body ran, entry point exists
COMPILED_STATUSES = frozenset({Status.TIMEOUT, Status.MEMORY, Status.CRASHED, Status.FAILED, Status.PASSED})

#: statuses that are excluded from model metrics
EXCLUDED_STATUSES = frozenset({Status.HARNESS_ERROR})
