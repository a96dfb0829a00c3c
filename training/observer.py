"""What the training loop (training.driver.run_chunks) hands its observers at every chunk end: the run log's
rows, evaluations, checkpoints, W&B and the progress bar each watch the chunks through this one interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Chunk:
    """The host's view at the end of one compiled chunk of updates (states stacked over the S seeds)."""

    step: int  # updates done per seed
    length: int  # updates in this chunk
    states: Any  # drol.learner.TrainState of every seed
    metrics: dict[str, np.ndarray]  # the chunk's means of the training metrics {name: (S,)}
    diverged: np.ndarray  # (S,) bool: the seed's losses became NaN/inf
    last: bool  # the run's last chunk (its last step, or every seed diverged)
    updates_per_s: float  # updates per second in the compiled chunks since this leg started
    rows: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # {row dim: row} logged at this step


class Observer:
    """Watches the chunks in the driver's order; `close` runs once at the end (`failed`: an exception ends it)."""

    def on_chunk(self, chunk: Chunk) -> None: ...

    def close(self, failed: bool) -> None:
        pass
