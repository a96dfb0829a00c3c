"""The published scoring protocol (docs/drol-spec.md section 3): how a run's evaluations become a score.
Only evaluations on the run's final schedule count (`counted_evaluations`), so a score does not depend on how
the run was split by resumes; the others stay in the log, marked `eval_counted` False.
"""

from __future__ import annotations

import numpy as np

LAST_EVALS_FOR_SCORE = 3  # the published protocol: a run's score is the mean of its last 3 evaluations


def counted_evaluations(eval_steps: np.ndarray, eval_interval: int, end_step: int) -> np.ndarray:
    """Which evaluations (E,) int the protocol counts, (E,) bool: those at a multiple of `eval_interval` or at
    `end_step` (the run's planned steps, or the update at which every seed had diverged)."""
    steps = np.asarray(eval_steps, np.int64)
    return (steps % int(eval_interval) == 0) | (steps == int(end_step))


def logged_counted(eval_counted: np.ndarray) -> np.ndarray:
    """The logged `eval_counted` as booleans, of any shape (open_runs makes it float: NaN is False)."""
    return np.nan_to_num(np.asarray(eval_counted, np.float64), nan=0.0) > 0


def run_scores(eval_score: np.ndarray, counted: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """Each seed's score (docs/drol-spec.md section 3): the mean of its last LAST_EVALS_FOR_SCORE counted
    evaluations (fewer if the run made fewer); NaN for a seed that diverged or was never evaluated.
    eval_score (S, E) in step order, NaN where missing; counted (S, E) or (E,) bool; diverged (S,) bool -> (S,)."""
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
