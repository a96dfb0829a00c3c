"""Question 3: do the critic and BC directions disagree, and does routing resolve it? (a difference between
dynamic and static-routing is stated as an effect, not a mechanism)."""

from __future__ import annotations

from reports import stats
from reports.analysis import Analysis
from reports.document import Section
from reports.questions.common import (
    STATIC,
    DiagnosticQuestion,
    calibration_caveat,
    diagnostic_section,
    get,
    late_comparisons,
    material_threshold,
)
from reports.runs import Results
from reports.text import fmt_interval, group_label, plural, worded

# Said only beside a material difference, and only as what it is: a hypothesis these runs do not test (they vary
# the routing rule, and with it the whole training path; nothing in them isolates why the fraction differs).
HYPOTHESIS = ("One hypothesis, which these numbers do not test: re-routing lets a candidate closer to the critic's "
              "direction take the data point.")


def conflict_answer(results: Results, analysis: Analysis, task: str) -> list[str]:
    sentences = []
    for ablation, k in results.groups:
        cos = get(analysis, "grad_cos", task, ablation, k)
        frac = get(analysis, "conflict_frac", task, ablation, k)
        if cos is None or frac is None:
            continue
        verdict = worded(cos.late, material_threshold("grad_cos"), "the two gradients point the same way",
                         "the two gradients oppose each other", "the two gradients are about orthogonal",
                         "these runs cannot tell the sign of their agreement",
                         f"no verdict with {plural(cos.late.runs, 'seed')}")
        sentences.append(f"{group_label(ablation, k)}: cosine between the BC and critic gradients "
                         f"{fmt_interval(cos.late)} late ({verdict}, threshold +-{material_threshold('grad_cos'):g}); "
                         f"the BC pull opposes the critic's ascent on {fmt_interval(frac.early)} of probes at first "
                         f"and {fmt_interval(frac.late)} late.")
    for comparison, difference in late_comparisons(
            results, analysis, "conflict_frac", task,
            "the fraction of probes where the BC pull opposes the critic's ascent"):
        if stats.is_material(difference, material_threshold("conflict_frac")) and difference.point[0] < 0:
            comparison += " " + HYPOTHESIS
        sentences.append(comparison)
    caveat = calibration_caveat(results, analysis, task, "conflict_frac")
    return sentences + ([caveat] if caveat else [])


CONFLICT = DiagnosticQuestion(
    "q3-conflict", "3. Do the critic and BC directions disagree, and does routing resolve it?",
    "grad_cos is the cosine between the actor-parameter gradients of the BC term and of the critic term on the "
    "probes; grad_norm_ratio compares their sizes (bc_coef included); conflict_frac is the fraction of probes where "
    "the pull towards the data action points against the critic's ascent dQ/da at the winner.",
    drawn=("grad_cos", "grad_norm_ratio", "conflict_frac"), tabled=("grad_cos", "grad_norm_ratio", "conflict_frac"),
    caption="agreement of the BC and critic terms over training; mean over seeds, bands 95% bootstrap intervals.",
    answer=conflict_answer, references=lambda results, task: {"grad_cos": (0.0, "no agreement (cosine 0)")},
    needs=((STATIC, "Without static-routing runs there is nothing to tell whether routing resolves the conflict."),))


def question_conflict(results: Results, analysis: Analysis) -> Section:
    return diagnostic_section(CONFLICT, results, analysis)
