"""The diagnostics layer: routing hooks and xarray stability logs (ownership flips, winner-to-data
distances, critic/BC gradient conflicts, candidate usage). Modules: quantities (the registry of
every logged quantity), probes (device), stability (ownership history), support (nearest training
pairs), hooks (what training calls), runs (reading results).

Reading results: `open_runs(path)` (diagnostics.runs) opens every run folder under `path` as one
lazy xarray Dataset with leading dims (task, ablation, k), dims whatever the folder holds, e.g.

    from diagnostics import open_runs
    open_runs("runs/").flip_rate.sel(task="modes-2d", k=16).mean("seed").plot.line(x="step", hue="ablation")
"""

from typing import Any

__all__ = ["open_runs"]


def __getattr__(name: str) -> Any:
    # Imported on first use: diagnostics.runs pulls in dask, which training (diagnostics.hooks) does not need.
    if name == "open_runs":
        from diagnostics.runs import open_runs

        return open_runs
    raise AttributeError(f"module 'diagnostics' has no attribute {name!r}")
