"""Question 7: do the diagnostics measure what they say? For every task whose runs logged a ground truth, each
estimate of diagnostics.quantities.CALIBRATIONS beside its truth, their agreement against the pair's bar, and what
an estimate that misses is still good for."""

from __future__ import annotations

import numpy as np

from diagnostics.quantities import DIFFERENCE, PROBE_MEANS, QUANTITIES, REPORTING
from reports.analysis import Analysis, CalibrationSummary, run_seeds
from reports.document import Block, Figure, Paragraph, Section, Table
from reports.figures import Panel, interval_line, line_figure
from reports.questions.common import STEP_AXIS, figure_columns, runs_at
from reports.runs import Results
from reports.text import fmt_interval, group_label, plural, run_ks, seeds_text

TITLE = "7. Do the diagnostics measure what they say? Estimates against the task's truth"
UNDEFINED = "undefined: every deployed action has the same log-density (e.g. all beyond the support)"


def bar_text(summary: CalibrationSummary) -> str:
    """'<= 0.1' (|estimate - truth| at most; '<= 0.1 of mc_abs_return' in units of a scale), '>= 0.7' (rank
    correlation at least) or 'none'."""
    c = summary.calibration
    if c.bar is None:
        return "none"
    return f">= {c.bar:g}" if c.measure != DIFFERENCE else f"<= {c.bar:g}" + (f" of {c.scale}" if c.scale else "")


def crosses_bar(summary: CalibrationSummary) -> bool:
    """Whether the agreement's 95% interval reaches across the bar (the verdict is the mean's, not settled)."""
    bar, agreement = summary.calibration.bar, summary.agreement
    if bar is None or not agreement.has_interval:
        return False
    return bool(agreement.low[0] < bar < agreement.high[0] or bar in (agreement.low[0], agreement.high[0]))


def verdict(summary: CalibrationSummary, crossing: bool = True) -> str:
    """'within the bar', 'outside the bar', 'no bar' or 'undefined' (the mean over seeds'), with ' (its interval
    crosses the bar)' where it does, unless `crossing` is False."""
    within = summary.calibration.within_bar(float(summary.agreement.point[0]))
    if summary.calibration.bar is None:
        return "no bar"
    if within is None:
        return "undefined"
    text = "within the bar" if within else "outside the bar"
    return text + (" (its interval crosses the bar: inconclusive)" if crossing and crosses_bar(summary) else "")


def verdict_cell(summary: CalibrationSummary) -> str:
    """'within the bar (<= 0.1)', 'outside the bar (>= 0.8; crosses it: inconclusive)' or 'no bar'."""
    if summary.calibration.bar is None:
        return "no bar"
    crossing = "; crosses it: inconclusive" if crosses_bar(summary) else ""
    return f"{verdict(summary, crossing=False)} ({bar_text(summary)}{crossing})"


def bar_clause(summary: CalibrationSummary, bar: str) -> str:
    """'within the bar (at most 0.1)', 'outside the bar (at most 0.15; its interval crosses it)'."""
    crossing = "; its interval crosses it: inconclusive" if crosses_bar(summary) else ""
    return f"{verdict(summary, crossing=False)} ({bar}{crossing})"


def pairs_text(summary: CalibrationSummary) -> str:
    """'1,536' or '1,024 to 1,536' (row, probe) pairs per seed."""
    low, high = int(summary.pairs.min()), int(summary.pairs.max())
    return f"{low:,}" if low == high else f"{low:,} to {high:,}"


def undefined_text(summary: CalibrationSummary) -> str:
    """Where a rank correlation is undefined in some seeds: how many, why, and what the interval rests on."""
    if not summary.undefined:
        return ""
    seeds = len(summary.seeds)
    if summary.undefined == seeds:
        return f"{UNDEFINED}, in every one of the {plural(seeds, 'seed')}"
    undefined = [s for s, v in zip(summary.seeds, summary.agreement_values) if np.isnan(v)]
    return (f"{UNDEFINED}, in {summary.undefined} of the {plural(seeds, 'seed')} (seed {seeds_text(undefined)}); "
            f"the mean and its interval rest on the other {seeds - summary.undefined}")


def agreement_cell(summary: CalibrationSummary) -> str:
    """The judged agreement: |estimate - truth| (mean over seeds), or the rank correlation with its pairs per
    seed; '-' for a pair without a bar (its signed difference is the estimate's bias, in its own column)."""
    c = summary.calibration
    if c.measure != DIFFERENCE:
        if summary.undefined == len(summary.seeds):
            return UNDEFINED
        text = f"{fmt_interval(summary.agreement)} ({pairs_text(summary)} pairs per seed)"
        return text + (f"; {undefined_text(summary)}" if summary.undefined else "")
    return "-" if c.bar is None else fmt_interval(summary.agreement)


def seeds_cell(summary: CalibrationSummary) -> str:
    left_out = f" ({len(summary.left_out)} diverged, left out)" if summary.left_out else ""
    return f"{len(summary.seeds)}{left_out}"


def calibration_table(results: Results, analysis: Analysis, task: str) -> Table:
    rows = []
    for ablation, k in results.groups:
        for s in analysis.calibrations.get((task, ablation, k), ()):
            c = s.calibration
            rows.append((group_label(ablation, k), f"{c.estimate} vs {c.truth}", fmt_interval(s.estimate.late),
                         fmt_interval(s.truth.late), "-" if s.difference is None else fmt_interval(s.difference),
                         agreement_cell(s), verdict_cell(s), seeds_cell(s)))
    probe_means = ", ".join(f"{name} by {mean}" for name, mean in PROBE_MEANS.items())
    return Table(f"{task}: each diagnostic estimate beside its truth", (
        "run", "estimate vs truth", "estimate, late", "truth, late", "estimate - truth, late", "agreement",
        "verdict (bar)", "seeds"), tuple(rows),
        note="late: mean over the last third of logged rows; mean over seeds [95% bootstrap interval over seeds]; "
        f"per-probe quantities by their means over probes ({probe_means}). Agreement: |late estimate - late truth| "
        "per seed; or per seed the Spearman rank correlation over every logged (row, probe) pair (support_dist "
        "against minus behavior_logp). The verdict is the mean's; diverged seeds are left out.")


# ------------------------------------------------------------------------------------------------
# Paragraphs


def direction(difference, over: str, under: str) -> str:
    """`over` / `under` where the signed difference's interval lies above / below 0, else unsettled."""
    if difference.has_interval and difference.low[0] > 0:
        return over
    if difference.has_interval and difference.high[0] < 0:
        return under
    return "the sign of the gap is not settled by these seeds"


def rank_summary(summaries: tuple[CalibrationSummary, ...]) -> CalibrationSummary | None:
    return next((s for s in summaries if s.calibration.measure != DIFFERENCE), None)


def still_good_for(summary: CalibrationSummary, summaries: tuple[CalibrationSummary, ...]) -> str:
    """What an estimate that misses its truth still measures, in this run's terms."""
    name = summary.calibration.estimate
    if name == "support_dist":
        return ("support_dist, the distance to the nearest training pair, does not order deployed actions as the "
                "behaviour's density does here: it still measures how far the policy acts from the training pairs, "
                "not how likely the behaviour is to take those actions")
    if name == "ood_frac":
        text = ("ood_frac counts deployed actions beyond the data's own 95% nearest-neighbour distance in the "
                "standardised (state, action) space, which is not the same cut as a low behaviour density; ")
        rank = rank_summary(summaries)
        within = None if rank is None else rank.calibration.within_bar(float(rank.agreement.point[0]))
        if within:
            return text + ("since support_dist orders deployed actions as the true density does (its rank "
                           "correlation is within the bar), ood_frac still compares runs and training steps on this "
                           "task, but not as the share of actions truly out of support")
        return text + ("and support_dist does not order deployed actions as the true density does either, so read "
                       "the support quantities as distances to the training pairs, not as the behaviour's support")
    if name in ("conflict_frac", "conflict_frac_in_support"):
        return ("conflict_frac and conflict_frac_in_support read the learned critic's gradient: how often the pull to "
                "the data opposes the critic the actor is trained against, not the true improvement direction")
    if name in ("density_logp", "density_ood_frac"):
        return (f"{name} is the learned density's view: far beyond the support the truth sits at its floor, where "
                "only the out-of-support share compares")
    if name == "mc_bias":
        return ("mc_bias holds the critic against the returns of the policy's own episodes, at the states the policy "
                "visits and at every evaluation; critic_bias against the true value at the data's probe states and "
                "logged rows: where those states or times differ, mc_bias is the bias where the policy goes")
    return "read it as the estimate it is, not as its truth"


def pair_sentence(summary: CalibrationSummary, summaries: tuple[CalibrationSummary, ...]) -> str:
    c, s = summary.calibration, summary
    if c.measure != DIFFERENCE:
        if s.undefined == len(s.seeds):
            return f"{c.estimate} against the behaviour's log-density at the same deployed actions: {UNDEFINED}."
        text = (f"{c.estimate} against the behaviour's log-density at the same deployed actions: rank correlation "
                f"{fmt_interval(s.agreement)} (Spearman against {'minus ' * c.decreasing}log-density, over "
                f"{pairs_text(s)} (row, probe) pairs per seed), {bar_clause(s, f'at least {c.bar:g}')}")
        text += f"; {undefined_text(s)}" if s.undefined else ""
    elif c.bar is None:
        where = "deployed action" if c.estimate == "q_deployed" else "winner"
        return (f"The critic's Q at the {where}, {fmt_interval(s.estimate.late)} late, against its true value "
                f"{fmt_interval(s.truth.late)}: Q minus true value {fmt_interval(s.difference)} "
                f"({direction(s.difference, 'the critic over-estimates it', 'the critic under-estimates it')}; "
                "no bar: the bias's scale follows the task's rewards).")
    else:
        gap = direction(s.difference, f"{c.estimate} over-states {c.truth}", f"{c.estimate} under-states {c.truth}")
        unit = f" of {c.scale}" if c.scale else ""  # (the difference in units of that scale)
        text = (f"{c.estimate} is {fmt_interval(s.estimate.late)} late against {c.truth} "
                f"{fmt_interval(s.truth.late)}: estimate minus truth {fmt_interval(s.difference)}{unit} ({gap}); "
                f"|estimate - truth| per seed {fmt_interval(s.agreement)}{unit}, "
                f"{bar_clause(s, f'at most {c.bar:g}{unit}')}")
    within = c.within_bar(float(s.agreement.point[0]))
    if within is False:
        return f"{text}."  # what it is still good for: once per task (missed_paragraph)
    if within and not crosses_bar(s):
        return f"{text}: on this task it can stand for its truth."
    return f"{text}."


def run_paragraph(task: str, ablation: str, k: int, summaries: tuple[CalibrationSummary, ...]) -> Paragraph:
    seeds = summaries[0].seeds
    left_out = summaries[0].left_out
    head = f"{task}, {group_label(ablation, k)} ({plural(len(seeds), 'seed')}"
    head += f"; {plural(len(left_out), 'diverged seed')}, {seeds_text(left_out)}, left out)" if left_out else ")"
    held = [s for s in summaries if s.calibration.within_bar(float(s.agreement.point[0])) and not crosses_bar(s)]
    biases = [s for s in summaries if s.calibration.bar is None]
    sentences = [pair_sentence(s, summaries) for s in summaries if s not in held and s not in biases]
    if biases:  # the critic's Q against the true value, at the deployed action and the winner: one sentence
        where = {"q_deployed": "deployed action", "q_winner": "winner"}
        sentences.append("The critic's Q minus the true value, late: " + "; ".join(
            f"{fmt_interval(s.difference)} at the {where.get(s.calibration.estimate, s.calibration.estimate)} "
            f"({direction(s.difference, 'over-estimates', 'under-estimates')})" for s in biases)
            + " (no bar: its scale follows the task's rewards).")
    if held:  # the table gives their figures: one clause, so that a report of many runs stays short
        sentences.insert(0, f"within their bars: {', '.join(s.calibration.estimate for s in held)}.")
    return Paragraph(f"{head}: " + " ".join(sentences))


def absent_paragraph(results: Results, task: str, ablation: str, k: int) -> Paragraph:
    """Why a run of a task with a truth holds nothing against it: every seed diverged, or it logged no truth."""
    healthy, diverged = run_seeds(results, task, ablation, k)
    if not healthy:
        return Paragraph(f"{task}, {group_label(ablation, k)}: every seed diverged ({plural(len(diverged), 'seed')}: "
                         f"{seeds_text(diverged)}), and diverged seeds are left out of every diagnostic: nothing to "
                         "hold against the truth.")
    return Paragraph(f"{task}, {group_label(ablation, k)}: logged no ground truth beside its estimates (a run made "
                     "before drol-diag logged it, or without probe diagnostics); not in this section.")


def missed_paragraph(task: str, analysis: Analysis) -> Paragraph | None:
    """One line over the task's runs: which estimates miss their truth in how many runs, or that none does."""
    runs = [summaries for (t, _, _), summaries in analysis.calibrations.items() if t == task]
    judged: dict[str, list[bool]] = {}
    for summaries in runs:
        for s in summaries:
            within = s.calibration.within_bar(float(s.agreement.point[0]))
            if within is not None:
                judged.setdefault(s.calibration.estimate, []).append(within)
    if not judged:
        return None
    missing = [f"{name} in {sum(not w for w in within)} of {plural(len(within), 'run')}"
               for name, within in judged.items() if not all(within)]
    if not missing:
        return Paragraph(f"{task}: every judged estimate ({', '.join(judged)}) is within its bar in every run.")
    holding = [name for name, within in judged.items() if all(within)]
    every = tuple(s for summaries in runs for s in summaries)
    missed = {s.calibration.estimate: s for s in every
              if s.calibration.within_bar(float(s.agreement.point[0])) is False}
    good_for = list(dict.fromkeys(still_good_for(s, every) for s in missed.values()))  # (the two conflicts: one)
    return Paragraph(f"{task}: outside their bars: {'; '.join(missing)}."
                     + (f" Within their bars in every run: {', '.join(holding)}." if holding else "")
                     + " Where each misses: " + "; ".join(good_for) + ".")


# ------------------------------------------------------------------------------------------------
# Figure


def calibration_panels(results: Results, analysis: Analysis, task: str) -> list[Panel]:
    """Panels (estimate-truth pair x K) against training step: per ablation the estimate solid, its truth dotted
    (Line.secondary). The judged DIFFERENCE pairs in the estimate's own units only: a rank correlation is one number
    per seed, and the critic's biases (no bar; mc_bias, judged in units of the return scale) are in the table and
    the text."""
    ks = run_ks(results.groups) or [1]
    panels = []
    pairs = {s.calibration.estimate: s.calibration for (t, _, _), summaries in analysis.calibrations.items()
             if t == task for s in summaries
             if s.calibration.measure == DIFFERENCE and s.calibration.bar is not None and not s.calibration.scale}
    for name, calibration in pairs.items():
        for k in ks:
            lines = []
            for ablation, run_k in runs_at(results, k, ks):
                for s in analysis.calibrations.get((task, ablation, run_k), ()):
                    if s.calibration.estimate == name:  # (the estimate and its truth in one colour)
                        lines += [interval_line(f"{ablation}: {what}", results.point(ablation).ablation,
                                                summary.curve.steps, summary.curve.estimate, secondary, ablation)
                                  for summary, what, secondary in ((s.estimate, "estimate", False),
                                                                   (s.truth, "truth", True))]
            if lines:
                units = {QUANTITIES[calibration.estimate].unit, QUANTITIES[calibration.truth].unit}
                reporting = REPORTING.get(calibration.estimate)
                bounds = (reporting.low, reporting.high) if reporting else (None, None)
                panels.append(Panel(f"{calibration.estimate} vs {calibration.truth}, K={k}", STEP_AXIS,
                                    " / ".join(sorted(units)), tuple(lines), bounds=bounds,
                                    min_span=2 * (calibration.bar or 0.0)))
    return panels


def calibration_figure(results: Results, analysis: Analysis, task: str) -> Figure | None:
    """calibration_panels drawn, or None where no pair has a curve."""
    panels = calibration_panels(results, analysis, task)
    if not panels:
        return None
    return line_figure(f"truth-{task}", f"{task}: each diagnostic estimate (solid) beside its truth (dotted, hollow "
                       "markers) over training; mean over seeds, bands 95% bootstrap intervals over seeds.", panels,
                       columns=figure_columns(run_ks(results.groups) or [1]) if len(run_ks(results.groups)) > 1
                       else min(len(panels), 4))  # one K: the pairs side by side, one row


# ------------------------------------------------------------------------------------------------
# The section


def question_truth(results: Results, analysis: Analysis) -> Section:
    with_truth = [t for t in results.tasks if any(task == t for task, _, _ in analysis.calibrations)]
    if not with_truth:
        return Section("q7-truth", TITLE, (Paragraph(
            f"None of these runs logged a ground truth (task{'' if len(results.tasks) == 1 else 's'}: "
            f"{', '.join(results.tasks)}), so no diagnostic can be held against one here. The embedded tasks know "
            "theirs (the modes, arc and cliff families), and a factory task can give one "
            "(true_value, "
            "behavior_log_density): a run on such a task logs the truth beside each estimate (e.g. `drol-diag run "
            "--task modes-2d`), and this section then shows how well each estimate agrees with it."),))
    blocks: list[Block] = [Paragraph(
        "On a task that knows its ground truth, each diagnostic is held against what it estimates (the pairs and "
        "their bars are in the table): the out-of-support shares (kNN's ood_frac, the learned density's "
        "density_ood_frac) against the true share, the conflict shares against the true value's, the critic's Q "
        "against the true value, and support_dist and density_logp against the behaviour's log-density.")]
    without = [t for t in results.tasks if t not in with_truth]
    if without:
        blocks.append(Paragraph(f"No ground truth logged for {', '.join(without)}: not in this section."))
    for task in with_truth:
        missed = missed_paragraph(task, analysis)
        blocks += [missed] if missed else []
        for ablation, k in results.groups:
            if (task, ablation, k) in analysis.calibrations:
                blocks.append(run_paragraph(task, ablation, k, analysis.calibrations[(task, ablation, k)]))
            elif results.run(task, ablation, k) is not None:
                blocks.append(absent_paragraph(results, task, ablation, k))
        figure = calibration_figure(results, analysis, task)
        blocks += [figure] if figure else []
        blocks.append(calibration_table(results, analysis, task))
    return Section("q7-truth", TITLE, tuple(blocks))

