"""Question 8: does the critic over-value what the policy does? The learned Q at the steps the deployed policy took
in its evaluation episodes against the discounted return that followed (diagnostics.montecarlo, REDQ's bias), per
run and K over training, read beside the out-of-support share."""

from __future__ import annotations

import numpy as np

from reports.analysis import Analysis
from reports.document import Section
from reports.questions.common import (
    DiagnosticQuestion,
    calibration_caveat,
    diagnostic_section,
    get,
    late_comparisons,
    material_threshold,
)
from reports.questions.support import support_estimate
from reports.runs import Results
from reports.text import fmt_interval, group_label, plural, worded


def uncounted_evaluations(results: Results, task: str, ablation: str, k: int) -> tuple[int, int]:
    """(evaluations with no countable step, evaluations logged) of a run: the former carry NaN, never 0."""
    if "mc_steps" not in results.logs:
        return 0, 0
    steps = np.asarray(results.logs["mc_steps"].sel(task=task, ablation=ablation, k=k).values, np.float64)
    logged = np.isfinite(steps)
    return int((steps[logged] == 0).sum()), int(logged.sum())


def critic_answer(results: Results, analysis: Analysis, task: str) -> list[str]:
    share_name, _ = support_estimate(results, analysis, task)
    threshold = material_threshold("mc_bias_normalized")
    sentences = []
    for ablation, k in results.groups:
        label = group_label(ablation, k)
        empty, logged = uncounted_evaluations(results, task, ablation, k)
        if empty:
            sentences.append(f"{label}: {empty} of {plural(logged, 'evaluation')} completed no countable step (no "
                             "episode terminated, and none ran long enough past a step for its return to be "
                             "complete): their bias is undefined and left out, not read as 0.")
        bias, normalized = get(analysis, "mc_bias", task, ablation, k), get(analysis, "mc_bias_normalized", task,
                                                                             ablation, k)
        if bias is None or normalized is None:
            continue
        verdict = worded(normalized.late, threshold, "the critic over-values the policy's own actions",
                         "the critic under-values them", "about right", "these runs cannot tell the sign",
                         f"no verdict with {plural(normalized.late.runs, 'seed')}")
        spread, share = get(analysis, "mc_bias_std", task, ablation, k), get(analysis, share_name, task, ablation, k)
        sentence = (f"{label}: Q minus the Monte-Carlo return {fmt_interval(bias.early)} at first and "
                    f"{fmt_interval(bias.late)} late, {fmt_interval(normalized.late)} of the return scale ({verdict}, "
                    f"threshold +-{threshold:g})")
        if spread is not None:
            sentence += f"; its spread over the visited steps {fmt_interval(spread.late)} of the return scale"
        if share is not None:
            sentence += (f"; the deployed actions out of support ({share_name}) {fmt_interval(share.early)} at "
                         f"first and {fmt_interval(share.late)} late")
        sentences.append(sentence + ".")
    sentences += [text for text, _ in late_comparisons(
        results, analysis, "mc_bias_normalized", task, "the critic's bias over the return scale")]
    caveat = calibration_caveat(results, analysis, task, "mc_bias")
    return sentences + ([caveat] if caveat else [])


CRITIC = DiagnosticQuestion(
    "q8-critic", "8. Does the critic over-value what the policy does?",
    "At every evaluation, each step the deployed policy took is held against what followed it: the critic's "
    "min-ensemble Q at the visited (state, action) minus the discounted return from there on (REDQ's bias; "
    "mc_bias), over the steps whose return is complete (the episode terminated, or the steps a time limit cut off "
    "carry under 1% of the discount weight), and normalised by the mean absolute return (mc_bias_normalized, "
    "with its spread over steps, mc_bias_std). A critic that extrapolates where the policy leaves the support "
    "shows here as a positive bias that grows with the out-of-support share.",
    drawn=("mc_bias", "mc_bias_normalized"), tabled=("mc_bias", "mc_bias_normalized", "mc_bias_std"),
    caption="the critic's Q minus the Monte-Carlo return of the policy's own evaluation episodes; mean over seeds, "
            "bands 95% bootstrap intervals.",
    answer=critic_answer, references=lambda results, task: {"mc_bias_normalized": (0.0, "no bias")})


def question_critic(results: Results, analysis: Analysis) -> Section:
    return diagnostic_section(CRITIC, results, analysis)
