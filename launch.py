"""Run the editsweep grid: one Hydra multirun cell per (model, method, regime, subset, seed).

    python launch.py -m model=small_llama method=rome,memit regime=instant,sequential hydra/launcher=slurm
    python launch.py        # no arguments: the embedded default (conf/experiment/embedded_default.yaml)

Cells go to `<sweep.root>/<sweep.name>/<cell>/`; rerunning the same command skips finished
cells and resumes unfinished ones from their own store. The logic lives in editsweep.cell.
After a multirun returns, finished or not, the sweep's report is written to `<sweep dir>/report/`
(editsweep.report.after_sweep).
"""

import sys

import hydra
from omegaconf import DictConfig

from editsweep.config_schema import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    from editsweep.cell import run_cell_from_hydra

    return run_cell_from_hydra(cfg)


#: what `python launch.py` with no arguments means
EMBEDDED_DEFAULT = ["+experiment=embedded_default"]


def hydra_arguments(arguments: list) -> list:
    """The arguments Hydra gets: the command line's, or the embedded default's when there are none."""
    return list(arguments) if arguments else list(EMBEDDED_DEFAULT)


def launch() -> int:
    """Hydra's main on the command line (the embedded default when it is empty), then the report."""
    sys.argv[1:] = hydra_arguments(sys.argv[1:])
    code = 0
    try:
        main()
    except SystemExit as exc:  # Hydra exits 1 when a cell failed; the report is still written
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    from editsweep.report.after_sweep import write_reports

    write_reports()
    return code


if __name__ == "__main__":
    sys.exit(launch())
