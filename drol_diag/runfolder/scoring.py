"""The published scoring protocol (docs/drol-spec.md section 3): how a run's evaluations become a score.

One rule decides which evaluations count, so that a score does not depend on how the run was split:
those on the run's final evaluation schedule (`counted_evaluations`). `run --steps 300`, then
`run --steps 600 --resume`, evaluates at step 300 as the first leg's end; a straight 600-step run
does not. That evaluation stays in the log, marked (`eval_counted` False), and no score uses it.
"""

from __future__ import annotations

import numpy as np

LAST_EVALS_FOR_SCORE = 3  # the published protocol: a run's score is the mean of its last 3 evaluations


def counted_evaluations(eval_steps: np.ndarray, eval_interval: int, end_step: int) -> np.ndarray:
    """Which evaluations the protocol counts: those on the run's final schedule, at a multiple of
    `eval_interval` or at `end_step` (the run's planned steps, or the update at which every seed had
    diverged and the run stopped). An evaluation off it (the last one of a leg that a resume
    extended) is kept in the log but counts nowhere.

    eval_steps (E,) int. Returns (E,) bool.
    """
    steps = np.asarray(eval_steps, np.int64)
    return (steps % int(eval_interval) == 0) | (steps == int(end_step))


def logged_counted(eval_counted: np.ndarray) -> np.ndarray:
    """The logged `eval_counted` marker as booleans, of any shape: True, or 1.0 where
    diagnostics.open_runs made it float; NaN (a row the run does not have) is False."""
    return np.nan_to_num(np.asarray(eval_counted, np.float64), nan=0.0) > 0


def run_scores(eval_score: np.ndarray, counted: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """The published protocol's score of each seed (docs/drol-spec.md section 3): the mean of its
    last LAST_EVALS_FOR_SCORE counted evaluations (fewer if the run made fewer), NaN for a seed that
    diverged (its last policy is unusable, so no score is made up from earlier evaluations) or was
    never evaluated.

    eval_score (S, E): logged evaluations in step order, NaN where a seed has none; counted (S, E)
    or (E,) bool: the evaluations on the run's final schedule (counted_evaluations; the log's
    eval_counted), the others are left out; diverged (S,) bool. Returns (S,) float64.
    """
    values = np.asarray(eval_score, np.float64)
    counted = np.broadcast_to(np.asarray(counted, bool), values.shape)
    scores = np.full(values.shape[0], np.nan)
    for i, row in enumerate(values):
        used = row[np.isfinite(row) & counted[i]]
        if used.size and not diverged[i]:
            scores[i] = used[-LAST_EVALS_FOR_SCORE:].mean()
    return scores


def scored_evaluations(eval_score: np.ndarray, counted: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """How many evaluations each seed's run_scores averages (same arguments): at most
    LAST_EVALS_FOR_SCORE, 0 for a seed without a score. Returns (S,) int."""
    values = np.asarray(eval_score, np.float64)
    counted = np.broadcast_to(np.asarray(counted, bool), values.shape)
    used = np.minimum((np.isfinite(values) & counted).sum(axis=1), LAST_EVALS_FOR_SCORE)
    return np.where(np.asarray(diverged, bool), 0, used)
