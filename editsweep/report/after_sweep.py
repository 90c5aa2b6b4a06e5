"""The report written when `python launch.py` returns from a multirun, also when some cells failed.

Hydra calls a callback's `on_multirun_end` only when every cell succeeded (its sweeper re-raises the
first failed cell, and Hydra then exits), so `SweepReport` only remembers the sweep directory at
`on_multirun_start`, in the launching process, and `launch.py` calls `write_reports()` once Hydra
has returned or exited. Enabled in `conf/config.yaml` (`hydra.callbacks.sweep_report`); switch it
off with `hydra.callbacks.sweep_report.enabled=false`, or leave out the figures with
`hydra.callbacks.sweep_report.figures=false`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, List, Tuple

from hydra.experimental.callback import Callback

log = logging.getLogger(__name__)

#: (sweep dir, draw figures) of each multirun started in this process, in order
_LAUNCHED: List[Tuple[Path, bool]] = []


class SweepReport(Callback):
    """Remember a multirun's sweep directory so that its report can be written when it returns."""

    def __init__(self, enabled: bool = True, figures: bool = True) -> None:
        self.enabled = bool(enabled)
        self.figures = bool(figures)

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        if self.enabled:
            _LAUNCHED.append((Path(str(config.hydra.sweep.dir)).absolute(), self.figures))


def write_reports() -> List[Path]:
    """Write the report of every sweep launched in this process (once each); returns the report.md paths.

    A report that cannot be written is logged and skipped: it never changes the launch's exit code,
    and `editsweep report SWEEP_DIR` can be run again by hand.
    """
    from editsweep.report import build_report

    written = []
    while _LAUNCHED:
        sweep_dir, figures = _LAUNCHED.pop(0)
        if not sweep_dir.is_dir():
            log.warning("no report: the sweep directory %s does not exist (no cell was launched)", sweep_dir)
            continue
        log.info("writing the report of %s", sweep_dir)
        try:
            report = build_report(sweep_dir, figures=figures)
        except Exception:
            log.exception("the report of %s could not be written; run `editsweep report %s` to retry",
                          sweep_dir, sweep_dir)
            continue
        written.append(report)
        print(f"report: {report}", flush=True)
    return written
