"""Question 8: does the critic over-value what the policy does? The learned Q at the steps the deployed policy took
in its evaluation episodes against the discounted return that followed (diagnostics.montecarlo, REDQ's bias), per
run and K over training, read beside the out-of-support share."""

from __future__ import annotations

import numpy as np

from reports.analysis import Analysis, one_step_episodes
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

ONE_STEP = ("each evaluation episode here is one step, so the Monte-Carlo return is the true value at the deployed "
            "action and mc_bias is question 7's critic_bias on other states: not repeated here.")


NOT_LOGGED = ("no run logged the Monte-Carlo check: the task's evaluation returns no per-step record "
              "(drol_diag.tasks.base.Visited), or the runs predate it.")


def uncounted_evaluations(results: Results, task: str, ablation: str, k: int) -> tuple[int, int]:
    """(evaluations with no countable step, evaluations logged) of a run: the former carry NaN, never 0."""
    if "mc_steps" not in results.logs:
        return 0, 0
    steps = np.asarray(results.logs["mc_steps"].sel(task=task, ablation=ablation, k=k).values, np.float64)
    logged = np.isfinite(steps)
    return int((steps[logged] == 0).sum()), int(logged.sum())


def critic_answer(results: Results, analysis: Analysis, task: str) -> list[str]:
    """critic_sentences, or on a one-step task (where question 7 holds the same bias against its truth) ONE_STEP."""
    if "mc_steps" not in results.logs or not np.isfinite(results.logs["mc_steps"].sel(task=task).values).any():
        return [NOT_LOGGED]
    return [ONE_STEP] if one_step_task(results, task) else critic_sentences(results, analysis, task)


def one_step_task(results: Results, task: str) -> bool:
    """Whether every evaluation episode of `task`'s runs was one step long."""
    return one_step_episodes(results.logs.sel(task=task))


def critic_sentences(results: Results, analysis: Analysis, task: str) -> list[str]:
    """Per run: the bias early and late, over the return scale, its spread, the out-of-support share; evaluations
    without a countable step; dynamic minus static-routing; the calibration's caution."""
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
    "The critic's min-ensemble Q at each step the deployed policy took in its evaluation episodes minus the "
    "discounted return that followed (REDQ's bias, mc_bias; complete returns only), and over the mean absolute "
    "return (mc_bias_normalized; its spread, mc_bias_std): positive where the critic over-values what the policy does.",
    drawn=("mc_bias", "mc_bias_normalized"), tabled=("mc_bias", "mc_bias_normalized", "mc_bias_std"),
    caption="the critic's Q minus the Monte-Carlo return of the policy's own evaluation episodes; mean over seeds, "
            "bands 95% bootstrap intervals.",
    answer=critic_answer, references=lambda results, task: {"mc_bias_normalized": (0.0, "no bias")})


def question_critic(results: Results, analysis: Analysis) -> Section:
    return diagnostic_section(CRITIC, results, analysis)
