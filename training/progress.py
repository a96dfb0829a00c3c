"""The run's progress bar (an observer, training.observer): updates done, the training rate and the
healthy seeds' mean losses, on stderr."""

from __future__ import annotations

import sys

import numpy as np
from tqdm import tqdm

from drol_diag.settings import RunConfig
from training.observer import Chunk, Observer


class ProgressBar(Observer):
    def __init__(self, run: RunConfig, num_candidates: int, start: int, show: bool):
        self.bar = tqdm(total=run.steps, initial=start, unit="upd", disable=not show, dynamic_ncols=True,
                        desc=f"{run.task} {run.ablation} K={num_candidates} seeds={len(run.seeds)}", file=sys.stderr)
        self.bar.set_postfix_str("compiling")

    def on_chunk(self, chunk: Chunk) -> None:
        self.bar.update(chunk.length)
        healthy = ~chunk.diverged
        losses = {name: f"{np.mean(chunk.metrics[name + '_loss'][healthy]):.3g}" if healthy.any() else "nan"
                  for name in ("critic", "actor")}
        self.bar.set_postfix(train_upd_s=f"{chunk.updates_per_s:.1f}", **losses)

    def close(self, failed: bool) -> None:
        self.bar.close()
