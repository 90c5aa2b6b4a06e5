"""Launcher configs `editsweep_slurm` and `editsweep_local` (the `hydra/launcher` group).

They extend hydra-submitit-launcher's configs with the keys the resumable launcher adds;
`conf/hydra/launcher/*.yaml` build on them.
"""


from dataclasses import dataclass
from typing import Optional

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf

#: keys of this launcher that submitit does not know (removed before submission)
EXTRA_KEYS = ("poll_s", "lost_grace_s", "parallelism", "skip_done", "validator", "prepare")
#: checks every composed cell config before submission ("module:function"; null: none)
DEFAULT_VALIDATOR = "editsweep.config_schema:validate_config"
#: runs once in the launching process with the configs of the cells about to be submitted
#: ("module:function"; null: none); editsweep's builds each benchmark once, before the cells start
DEFAULT_PREPARE = "editsweep.cell:prepare_cells"


@dataclass
class EditsweepSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.editsweep_launcher.launcher.EditsweepSlurmLauncher"
    #: seconds between job-state polls (squeue)
    poll_s: float = 5.0
    #: a job ended or unknown to squeue this long without a result is reported failed
    lost_grace_s: float = 30.0
    #: unused by Slurm (array_parallelism limits concurrency); kept for a uniform schema
    parallelism: int = 0
    #: skip cells whose result.json exists
    skip_done: bool = True
    validator: Optional[str] = DEFAULT_VALIDATOR
    prepare: Optional[str] = DEFAULT_PREPARE


@dataclass
class EditsweepLocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.editsweep_launcher.launcher.EditsweepLocalLauncher"
    poll_s: float = 1.0
    lost_grace_s: float = 5.0
    #: cells running at once, each in its own process
    parallelism: int = 1
    skip_done: bool = True
    validator: Optional[str] = DEFAULT_VALIDATOR
    prepare: Optional[str] = DEFAULT_PREPARE


ConfigStore.instance().store(group="hydra/launcher", name="editsweep_slurm", node=EditsweepSlurmConf,
                             provider="editsweep_launcher")
ConfigStore.instance().store(group="hydra/launcher", name="editsweep_local", node=EditsweepLocalConf,
                             provider="editsweep_launcher")
