"""Layer 3, the training driver (above the diagnostics it records): `driver` trains a run and records
its folder; `load_run` loads a trained policy back from one."""

from training.trained_run import load_run

__all__ = ["load_run"]
