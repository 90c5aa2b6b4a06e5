"""Run the editsweep grid: one Hydra multirun cell per (model, method, regime, subset, seed).

    python launch.py -m model=small_llama method=rome,memit regime=instant,sequential hydra/launcher=slurm

Cells go to `<sweep.root>/<sweep.name>/<cell>/`; rerunning the same command skips finished
cells and resumes unfinished ones from their own store. The logic lives in editsweep.cell.
"""

import hydra
from omegaconf import DictConfig

from editsweep.config_schema import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    from editsweep.cell import run_cell_from_hydra

    return run_cell_from_hydra(cfg)


if __name__ == "__main__":
    main()
