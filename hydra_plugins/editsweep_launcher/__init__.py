"""editsweep's resumable submitit launcher (Hydra discovers it in the hydra_plugins namespace)."""
