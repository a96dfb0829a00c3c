"""The learner for a config: DROL (drol.learner) and its variants, or the FQL baseline (drol.fql)."""

from __future__ import annotations

from drol.config import LearnerConfig
from drol.fql import FQLLearner
from drol.learner import Learner


def make_learner(config: LearnerConfig, obs_dim: int, action_dim: int,
                 num_transitions: int = 0) -> Learner | FQLLearner:
    """The learner of `config.method` with the task's dimensions (num_transitions: training-set size N)."""
    learner_class = FQLLearner if config.method == "fql" else Learner
    return learner_class(config, obs_dim, action_dim, num_transitions)
