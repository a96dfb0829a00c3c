"""Checkpoints (an observer, training.observer): the whole training state of every seed, saved atomically
(drol_diag.runfolder.store.save_checkpoint) at every checkpoint step and the last, with what a resume needs
to continue bit for bit: the step, the seeds and the run log's averaging window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from drol_diag.runfolder import store
from drol_diag.settings import RunConfig
from training.observer import Chunk, Observer
from training.run_log import LogRows, Window


def restore(run_dir: Path, states: Any) -> tuple[Any, int, Window] | None:
    """The states (in the structure of `states`), step and averaging window of the run folder's checkpoint
    (None: none)."""
    restored = store.load_checkpoint(run_dir, states)
    if restored is None:
        return None
    saved, extra = restored
    since_log = [(length, {k: np.asarray(v, np.float32) for k, v in means.items()})  # chunk means are float32
                 for length, means in extra.get("since_log", [])]
    return jax.tree.map(jnp.asarray, saved), int(extra["step"]), since_log


class Checkpoints(Observer):
    phase = "writing"

    def __init__(self, run_dir: Path, run: RunConfig, rows: LogRows):
        """`rows`: the run log's observer, before this one (its rows are flushed when the checkpoint is saved)."""
        self.run_dir, self.run, self.rows = run_dir, run, rows

    def on_chunk(self, chunk: Chunk) -> None:
        if chunk.step % self.run.checkpoint_interval == 0 or chunk.last:
            states = jax.tree.map(np.array, chunk.states)  # copies: the next chunk reuses (donated) device buffers
            self.rows.writer.submit(store.save_checkpoint, self.run_dir, states, {
                "step": chunk.step, "seeds": list(self.run.seeds), "since_log": list(self.rows.since_log)})
