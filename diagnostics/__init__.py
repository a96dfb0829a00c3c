"""The diagnostics layer: quantities (the registry of every logged quantity), probes (device), stability
(ownership history), support (nearest training pairs), hooks (what training calls), runs (reading results):

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
