"""The run log's training rows (an observer, training.observer): at every log step and the last, the
means of the training metrics over the updates since the previous row, the divergence flags and, with
diagnostics, the probe diagnostics (diagnostics.hooks.ProbeRecorder); then the log is flushed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from diagnostics.hooks import ProbeRecorder
from diagnostics.quantities import row_dims
from drol_diag.runfolder import scoring, store
from drol_diag.settings import RunConfig
from training.observer import Chunk, Observer

Window = list[tuple[int, dict[str, np.ndarray]]]  # (length, chunk means {name: (S,)}) of the chunks since the last row


def weighted_means(chunks: Window) -> dict[str, np.ndarray]:
    """Means over all updates of several chunks, from each chunk's length and means {name: (S,)}."""
    total = sum(length for length, _ in chunks)
    return {name: sum(length * means[name] for length, means in chunks) / total for name in chunks[0][1]}


class LogRows(Observer):
    phase = "writing"  # (its diagnostic rows: diagnostics)

    def __init__(self, run_dir: Path, run: RunConfig, num_candidates: int, record: dict[str, Any],
                 recorder: ProbeRecorder | None, since_log: Window, start: int, resume: bool, writer: store.Writer):
        """Open the run log; a resume keeps its rows up to the checkpoint's `start` (none without a checkpoint:
        start 0) and continues the averaging window `since_log` and the recorder's state from them. Flushes go
        to `writer`'s thread (the checkpoints' too, after them)."""
        self.interval, self.recorder, self.since_log, self.writer = run.log_interval, recorder, since_log, writer
        attrs = {"task": run.task, "ablation": run.ablation, "num_candidates": num_candidates,
                 **store.flatten_attrs(record)}
        self.log = store.RunLog(run_dir, list(run.seeds), attrs, recorder.static_variables() if recorder else None,
                                row_dims())
        if resume:
            kept, evaluated = self.log.load(start, run.log_interval), self.log.written["eval_step"]
            if evaluated is not None and "eval_step" in evaluated.dims:  # (counted by the final schedule: a resume
                # that extends the run moves its end, and the previous leg's final evaluation stops counting)
                counted = scoring.counted_evaluations(evaluated["eval_step"].values, run.eval_interval, run.steps)
                self.log.written["eval_step"] = evaluated.assign(
                    eval_counted=(("seed", "eval_step"), np.tile(counted, (evaluated.sizes["seed"], 1))))
            if recorder is not None and kept is not None and "winner" in kept:
                recorder.replay(kept["winner"].values, kept["nearest"].values)

    def on_chunk(self, chunk: Chunk) -> None:
        self.since_log.append((chunk.length, chunk.metrics))
        on_grid = chunk.step % self.interval == 0
        if on_grid or chunk.last:
            row = {**weighted_means(self.since_log), "diverged": chunk.diverged}
            if self.recorder is not None:
                with chunk.phases("diagnostics"):
                    row.update(self.recorder.row(chunk.states, chunk.step))
            self.log.append("step", chunk.step, row)
            chunk.rows["step"] = row
            # A final row off the log grid does not close the averaging window: a resumed run
            # carries these chunks into its next row (and drops this row), as if never stopped.
            self.since_log = [] if on_grid else self.since_log
        self.log.flush(self.writer)  # (this step's rows, the evaluation's too: one new version, none without rows)

    def close(self, failed: bool) -> None:
        self.log.flush(self.writer)
