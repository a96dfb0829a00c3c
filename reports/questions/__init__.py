"""The report's referee questions (1-6), the diagnostics against the task's truth (7) and the critic against the
policy's own returns (8), one module each: a
question_* function turns the runs and their analysis into one report section, or, where the runs cannot answer,
gives the sweep command that would. common holds what the questions share; reports.text the wording helpers.
"""

from reports.questions.conflict import question_conflict
from reports.questions.critic import question_critic
from reports.questions.dynamic_vs_static import question_dynamic_vs_static
from reports.questions.error_bars import question_error_bars
from reports.questions.k_sensitivity import question_k
from reports.questions.ownership import question_ownership
from reports.questions.support import question_support
from reports.questions.truth import question_truth

__all__ = ["question_ownership", "question_support", "question_conflict", "question_dynamic_vs_static",
           "question_k", "question_error_bars", "question_truth", "question_critic"]
