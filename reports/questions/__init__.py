"""The report's six referee questions and the check of the diagnostics against the task's truth, one module each;
every question_* function turns the runs and their analysis into one report section (paragraphs written from the
numbers, tables, figures), or, where the runs cannot answer it, gives the sweep command that would (question 7:
names the tasks that know their truth).

1. ownership: does ownership move, and does it settle?
2. support: do critic-driven moves pull winners off the data?
3. conflict: do the critic and BC directions disagree, and does routing resolve it?
4. dynamic_vs_static: does dynamic routing beat a static assignment?
5. k_sensitivity: how sensitive is it to K?
6. error_bars: what every interval rests on.
7. truth: do the diagnostics measure what they say? Each estimate against the task's ground truth.

common holds what questions 1-4 share (diagnostic look-ups, figures and tables); reports.text the wording helpers.
"""

from reports.questions.conflict import question_conflict
from reports.questions.dynamic_vs_static import question_dynamic_vs_static
from reports.questions.error_bars import question_error_bars
from reports.questions.k_sensitivity import question_k
from reports.questions.ownership import question_ownership
from reports.questions.support import question_support
from reports.questions.truth import question_truth

__all__ = ["question_ownership", "question_support", "question_conflict", "question_dynamic_vs_static",
           "question_k", "question_error_bars", "question_truth"]
