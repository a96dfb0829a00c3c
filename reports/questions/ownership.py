"""Question 1: does ownership move, and does it settle? Flips early and late under dynamic routing, returns to a
former owner against their chance level, and static-routing as the zero line."""

from __future__ import annotations

import numpy as np

from reports import stats
from reports.analysis import REFERENCE_ABLATION, Analysis, DiagnosticSummary
from reports.document import Section
from reports.questions.common import (
    STATIC,
    DiagnosticQuestion,
    at_point,
    diagnostic_section,
    get,
    groups_of,
    material_threshold,
    too_few_rows,
    trend_difference,
)
from reports.runs import Results
from reports.text import effect_text, fmt_interval, plural, worded


def returns_text(analysis: Analysis, task: str, label: str, k: int, returns: DiagnosticSummary,
                 flips: DiagnosticSummary) -> str:
    """Late returns to a former owner beside their chance level, read as the excess over chance (dynamic run
    `label`: "dynamic", or a grid point of it)."""
    share = returns.late.point[0] / flips.late.point[0]
    text = f"Returns to a former owner are {fmt_interval(returns.late)} per interval ({share:.0%} of flips)"
    chance = get(analysis, "return_rate_chance", task, label, k)
    excess = get(analysis, "return_excess", task, label, k)
    if chance is None or excess is None:  # a log without the chance level: the share alone, no verdict
        return f"{text}; the chance level was not logged, so whether that is back and forth cannot be told."
    threshold = material_threshold("return_excess")
    text += (f"; if each flip went to a uniformly drawn other candidate, given each probe's history, they would be "
             f"{fmt_interval(chance.late)} ({chance.late.point[0] / flips.late.point[0]:.0%} of flips). Returns "
             f"minus chance: {effect_text(excess.late, threshold)}")
    return text + worded(
        excess.late, threshold, ": flips go back to former owners more often than chance (back and forth).",
        ": flips go back to former owners less often than chance (ownership migrates to new owners).",
        ": returns are within the threshold of chance, neither back and forth nor migration beyond it.",
        ": these runs cannot tell back and forth from migration.", ".")


def ownership_answer(results: Results, analysis: Analysis, task: str) -> list[str]:
    sentences = []
    dynamic = groups_of(results, REFERENCE_ABLATION)
    if any(k == 1 for _, k in dynamic):
        sentences.append("With K=1 there is one candidate per state, so nothing is routed and nothing can flip.")
    for label, k in dynamic:
        flips = get(analysis, "flip_rate", task, label, k) if k > 1 else None
        if flips is None:
            continue
        run = f"Under dynamic routing with K={k}{at_point(results, label)} ({plural(len(flips.seeds), 'seed')})"
        if flips.rows < 2:
            text = (f"{run}, {fmt_interval(flips.early)} of probe states "
                    "changed owner in the only logged interval (between the first two logs)")
        else:
            text = (f"{run}, {fmt_interval(flips.early)} of probe states "
                    f"changed owner between the first two logs and {fmt_interval(flips.late)} per log interval late "
                    "in training")
        if flips.early.point[0] == 0 and flips.late.point[0] == 0:
            text += ": ownership did not move."
        elif not flips.has_trend:
            text += f"; whether ownership settles: {too_few_rows(flips, 'the flip rate')}."
        else:
            change = trend_difference(analysis, flips)
            effect = f"late minus early {effect_text(change, material_threshold('flip_rate'))}"
            moving = stats.is_material(flips.late, material_threshold("flip_rate"))
            text += worded(change, material_threshold("flip_rate"),
                           f": ownership moves more late in training than early ({effect}).",
                           f": ownership moves, and it settles ({effect})"
                           + (", but it has not stopped." if moving else "."),
                           f": the flip rate stays where it was ({effect}).",
                           f": these runs cannot tell whether ownership settles ({effect}).", f" ({effect}).")
        returns = get(analysis, "return_rate", task, label, k)
        if returns is not None and flips.late.point[0] > 0:
            text += " " + returns_text(analysis, task, label, k, returns, flips)
        per_probe = get(analysis, "never_flipped", task, label, k)
        if per_probe is not None:
            text += f" By the end, {fmt_interval(per_probe.curve.estimate, -1)} of probes were never reassigned."
        sentences.append(text)
    for label, k in groups_of(results, STATIC):
        flips = get(analysis, "flip_rate", task, label, k)
        if flips is None:
            continue
        largest = float(np.max(flips.curve.estimate.point))
        if largest == 0.0:
            text = (f"static-routing (K={k}{at_point(results, label)}) never reassigns: its flip rate is 0 at every "
                    f"logged step in all {plural(len(flips.seeds), 'seed')}, as a frozen owner table must give.")
        else:
            text = (f"static-routing (K={k}{at_point(results, label)}) reassigned owners (largest flip rate "
                    f"{largest:.3g}): its owner table is not frozen, which is a bug.")
        mismatch = get(analysis, "owner_mismatch", task, label, k)
        if mismatch is not None:
            text += (f" Its frozen owner is no longer the nearest candidate for {fmt_interval(mismatch.late)} of "
                     "probes late in training (owners overtaken by other candidates).")
        sentences.append(text)
    return sentences


OWNERSHIP = DiagnosticQuestion(
    "q1-ownership", "1. Does ownership move, and does it settle?",
    "Each run routes a fixed set of probe transitions, each with its own fixed latent bank, at every log. A flip is a "
    "probe whose owner changed since the previous log; a return is a flip back to an owner the probe had before and "
    "lost (A -> B -> A); its chance level is the return rate if each flip went to a uniformly drawn other candidate, "
    "given the owners each probe has had, and the text reads the excess over it. static-routing, with its frozen "
    "owner table, is the zero line.",
    drawn=("flip_rate", "return_rate", "owner_mismatch", "winner_ari"),
    tabled=("flip_rate", "return_rate", "return_rate_chance", "return_excess", "nearest_flip_rate", "owner_mismatch",
            "winner_ari", "flips_per_probe", "never_flipped"),
    caption="ownership over training. Flip and return rates per log interval, the fraction of probes whose owner is "
            "not the nearest candidate, and the adjusted Rand index of the owner partition against the previous "
            "log; mean over seeds, bands 95% bootstrap intervals. K=1 (one candidate) is left out.",
    answer=ownership_answer, routing_only=True,
    needs=((REFERENCE_ABLATION, "No dynamic runs: this question is about dynamic routing."),
           (STATIC, "No static-routing runs: the zero line (a frozen assignment) is missing.")))


def question_ownership(results: Results, analysis: Analysis) -> Section:
    return diagnostic_section(OWNERSHIP, results, analysis)
