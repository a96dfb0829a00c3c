"""The published scoring protocol (docs/drol-spec.md section 3): how a run's evaluations become a score."""

from __future__ import annotations

import numpy as np

LAST_EVALS_FOR_SCORE = 3  # the published protocol: a run's score is the mean of its last 3 evaluations


def run_scores(eval_score: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """The published protocol's score of each seed (docs/drol-spec.md section 3): the mean of its
    last LAST_EVALS_FOR_SCORE evaluations (fewer if the run made fewer), NaN for a seed that diverged
    (its last policy is unusable, so no score is made up from earlier evaluations) or was never evaluated.

    eval_score (S, E): logged evaluations in step order, NaN where a seed has none; diverged (S,) bool.
    Returns (S,) float64.
    """
    scores = np.full(eval_score.shape[0], np.nan)
    for i, row in enumerate(np.asarray(eval_score, np.float64)):
        finite = row[np.isfinite(row)]
        if finite.size and not diverged[i]:
            scores[i] = finite[-LAST_EVALS_FOR_SCORE:].mean()
    return scores
