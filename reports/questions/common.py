"""What several questions share: diagnostic look-ups, effect sizes judged against each quantity's threshold, the
skeleton of the diagnostic questions (1-3: intro, missing controls, per task paragraphs, figure and table), and
the task's yardsticks and reference levels beside the scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from diagnostics.quantities import DIFFERENCE, QUANTITIES, REPORTING, STUDY_FINDINGS
from reports import stats
from reports.analysis import (
    DIAGNOSTICS,
    PER_PROBE,
    REFERENCE_ABLATION,
    TREND_ROWS,
    Analysis,
    DiagnosticSummary,
    Matched,
    is_baseline,
)
from reports.document import Block, Figure, Notice, Paragraph, Section, Table
from reports.figures import Line, Panel, interval_line, line_figure
from reports.runs import GridPoint, Results
from reports.text import effect_text, fill_command, fmt, fmt_interval, group_label, missing, plural, run_ks, worded

STATIC = "static-routing"
STEP_AXIS = "training step (gradient updates)"


def get(analysis: Analysis, variable: str, task: str, ablation: str, k: int) -> DiagnosticSummary | None:
    return analysis.diagnostics.get((variable, task, ablation, k))


def groups_of(results: Results, ablation: str) -> list[tuple[str, int]]:
    """The (label, K) groups of `ablation`: the ablation itself, or each of its grid points ("dynamic bc_coef=0.3")."""
    return [(label, k) for label, k in results.groups if results.point(label).ablation == ablation]


def matched(results: Results, label: str, ablation: str) -> str | None:
    """The label of `ablation` run at the grid point of `label` (the same swept settings), or None where it was not:
    matched("dynamic bc_coef=0.3", "static-routing") -> "static-routing bc_coef=0.3"."""
    other = GridPoint(ablation, results.point(label).settings).label
    return other if other in results.ablations else None


def at_point(results: Results, label: str) -> str:
    """', bc_coef=0.3' for a grid point's label (its swept settings, to follow "K=4"); '' without a grid."""
    settings = results.point(label).settings_text
    return f", {settings}" if settings else ""


def material_threshold(variable: str) -> float | None:
    """The smallest difference of `variable` the report calls material (diagnostics.quantities.REPORTING)."""
    return REPORTING[variable].material


def late_difference(results: Results, analysis: Analysis, variable: str, task: str, label: str,
                    k: int) -> stats.Interval | None:
    """The dynamic run `label`'s late value minus that of static-routing at its grid point and K (independent seeds,
    95% bootstrap interval), or None when either run lacks the quantity."""
    static = matched(results, label, STATIC)
    dyn, sta = get(analysis, variable, task, label, k), static and get(analysis, variable, task, static, k)
    if dyn is None or sta is None:
        return None
    return analysis.cached(("late", variable, task, label, k), lambda: stats.difference_interval(
        dyn.late_values, sta.late_values, analysis.reps, analysis.seed))


def late_comparisons(results: Results, analysis: Analysis, variable: str, task: str,
                     what: str) -> list[tuple[str, stats.Interval]]:
    """Per dynamic run with a static-routing run at its K and grid point: ('At K=4, <what>, dynamic minus
    static-routing late: <effect_text>.', the difference): the effect, never a cause."""
    comparisons = []
    for label, k in groups_of(results, REFERENCE_ABLATION):
        difference = late_difference(results, analysis, variable, task, label, k)
        if difference is not None:
            effect = effect_text(difference, material_threshold(variable))
            comparisons.append((f"At K={k}{at_point(results, label)}, {what}, dynamic minus static-routing late: "
                                f"{effect}.", difference))
    return comparisons


def trend_difference(analysis: Analysis, summary: DiagnosticSummary) -> stats.Interval:
    """Late minus early of one run's quantity, per seed, with a 95% bootstrap interval over seeds."""
    return analysis.cached(("trend", id(summary)), lambda: stats.paired_difference_interval(
        summary.early_values, summary.late_values, analysis.reps, analysis.seed))


def too_few_rows(summary: DiagnosticSummary, what: str) -> str:
    """Why an early-versus-late verdict cannot be given, and what would give one."""
    shown = ("early and late are the same value" if summary.rows < 2
             else "early and late are neighbouring values")
    return (f"with {plural(summary.rows, 'logged value')} of {what}, {shown}: too few to tell (a verdict needs "
            f"at least {TREND_ROWS}; log more often with --log-interval, or train longer)")


def diagnostic_label(variable: str) -> str:
    return DIAGNOSTICS[variable].label if variable in DIAGNOSTICS else PER_PROBE[variable]


def diagnostic_figure(results: Results, analysis: Analysis, task: str, names: list[str], name: str,
                      caption: str, references: dict[str, tuple[float, str]] | None = None,
                      routing_only: bool = False) -> Figure | None:
    """Panels (quantity x K), each with one line per ablation: mean over seeds with its band.
    `routing_only` leaves out K=1 (one candidate: nothing to route) when other K were run."""
    references = references or {}
    ks = run_ks(results.groups) or [1]
    if routing_only and len(ks) > 1:
        ks = [k for k in ks if k > 1]
    panels = []
    for variable in names:
        for k in ks:
            lines = [interval_line(ablation, results.point(ablation).ablation, summary.curve.steps,
                                   summary.curve.estimate, key=ablation)
                     for ablation, run_k in runs_at(results, k, ks)
                     if (summary := get(analysis, variable, task, ablation, run_k)) is not None]
            if lines:
                panels.append(diagnostic_panel(variable, f"{diagnostic_label(variable)}, K={k}", STEP_AXIS,
                                               tuple(lines), references.get(variable)))
    return line_figure(name, caption, panels, columns=figure_columns(ks)) if panels else None


def runs_at(results: Results, k: int, ks: list[int]) -> list[tuple[str, int]]:
    """(ablation, its K) drawn in a figure's panel at K=k (of `ks`): every ablation at k, and the baseline without K
    (at its K=1) in the first panel only."""
    return [(a, 1 if is_baseline(a) else k) for a in results.ablations if not (is_baseline(a) and k != ks[0])]


def figure_columns(ks: list[int]) -> int:
    """One column of panels per K, at most 3 (two where only one K)."""
    return min(len(ks), 3) if len(ks) > 1 else 2


def diagnostic_panel(variable: str, title: str, xlabel: str, lines: tuple[Line, ...],
                     reference: tuple[float, str] | None = None, log2_x: bool = False) -> Panel:
    """A panel of one reported quantity: its unit, its bounds, an axis at least twice its threshold high."""
    reporting = REPORTING[variable]
    return Panel(title, xlabel, QUANTITIES[variable].unit, lines, log2_x=log2_x, reference=reference,
                 bounds=(reporting.low, reporting.high), min_span=2 * (reporting.material or 0.0))


def diagnostic_table(results: Results, analysis: Analysis, task: str, names: list[str], caption: str) -> Table | None:
    """Per (ablation, K): each quantity early -> late, with intervals over seeds."""
    rows = []
    for ablation, k in results.groups:
        summaries = [get(analysis, variable, task, ablation, k) for variable in names]
        present = [s for s in summaries if s is not None]
        if present:
            rows.append((group_label(ablation, k), *map(early_late, summaries), str(len(present[0].seeds))))
    if not rows:
        return None
    columns = ("run", *[diagnostic_label(n) for n in names], "seeds")
    return Table(caption, columns, tuple(rows), note="first logged value -> mean over the last third of training "
                 "(one value: the same early and late); mean over seeds [95% bootstrap interval over seeds]; a value "
                 "without brackets is the same in every seed, (n=...) fewer seeds than an interval needs")


def early_late(summary: DiagnosticSummary | None) -> str:
    """A table cell 'early -> late' ('-': not logged); a value every resample repeats (every seed equal) bare."""
    if summary is None:
        return "-"
    early, late = fmt_interval(summary.early, bare=True), fmt_interval(summary.late, bare=True)
    return f"{early} (one logged value)" if summary.rows < 2 else early if early == late else f"{early} -> {late}"


@dataclass(frozen=True)
class DiagnosticQuestion:
    """What a diagnostic question (1-3) reads and how it words it; `diagnostic_section` gives every one its shape."""

    anchor: str
    title: str
    intro: str
    drawn: tuple[str, ...]  # quantities in the figure, one row of panels each
    tabled: tuple[str, ...]  # quantities in the table
    caption: str  # the figure's caption after "<task>: "
    answer: Callable[[Results, Analysis, str], list[str]]  # (results, analysis, task) -> sentences
    references: Callable[[Results, str], dict[str, tuple[float, str]]] = lambda results, task: {}  # dotted lines
    needs: tuple[tuple[str, str], ...] = ()  # (ablation, why the question needs it) when it is missing
    routing_only: bool = False  # leave K=1 (nothing routed) out of the figure


def diagnostic_section(question: DiagnosticQuestion, results: Results, analysis: Analysis) -> Section:
    blocks: list[Block] = [Paragraph(question.intro)]
    for ablation, why in question.needs:
        if not groups_of(results, ablation):
            blocks.append(missing(why, fill_command(results, ablations=list(dict.fromkeys(
                [*results.ablations, REFERENCE_ABLATION, ablation])))))
    for task in results.tasks:
        figure = diagnostic_figure(results, analysis, task, list(question.drawn), f"{question.anchor[3:]}-{task}",
                                   f"{task}: {question.caption}", question.references(results, task),
                                   question.routing_only)
        table = diagnostic_table(results, analysis, task, list(question.tabled),
                                 f"{task}: {question.anchor[3:]} quantities, early -> late")
        blocks += [Paragraph(f"{task}: {sentence}") for sentence in question.answer(results, analysis, task)]
        blocks += [b for b in (figure, table) if b]
    return Section(question.anchor, question.title, tuple(blocks))


# ------------------------------------------------------------------------------------------------
# Reference levels beside the scores


def score_levels(results: Results, analysis: Analysis) -> tuple[tuple[float, str], ...]:
    """(score, label) of each reference policy, for figures of scores over tasks: the task's own levels, or over
    several tasks their mean; none unless every task has the same reference policies."""
    per_task, names = shared_levels(results, analysis)
    if not names:
        return ()
    if len(per_task) == 1:
        return tuple((levels[name], name) for levels in per_task for name in names)
    return tuple((float(np.mean([levels[name] for levels in per_task])),
                  f"{name} (mean over {len(per_task)} tasks)") for name in names)


def shared_levels(results: Results, analysis: Analysis) -> tuple[list[dict[str, float]], list[str]]:
    """Each task's reference levels, and the policies' names where every task has the same ones (else none)."""
    per_task = [analysis.references.get(task, {}) for task in results.tasks]
    names = list(per_task[0]) if per_task else []
    return per_task, [] if any(list(levels) != names for levels in per_task) else names


def reference_aggregates(results: Results, analysis: Analysis) -> dict[str, np.ndarray]:
    """{reference policy: its aggregates (stats.AGGREGATES) over the tasks as a (1, tasks) score matrix}."""
    per_task, names = shared_levels(results, analysis)
    return {name: stats.aggregate_scores(np.array([[levels[name] for levels in per_task]])) for name in names}


def calibration_caveat(results: Results, analysis: Analysis, task: str, estimate: str) -> str | None:
    """Where `estimate` (a CALIBRATIONS estimate) is outside its bar on `task`: in this report's own runs (question
    7), the runs, the agreement and the bar; else, on a task without truth, the settle study's finding where the
    task has as many action dimensions as it applies from (diagnostics.quantities.STUDY_FINDINGS). None otherwise."""
    outside = [(group_label(a, k), c) for (t, a, k), summaries in analysis.calibrations.items() if t == task
               for c in summaries if c.calibration.estimate == estimate
               and c.calibration.within_bar(float(c.agreement.point[0])) is False]
    if outside:
        bar = outside[0][1].calibration
        measure = "rank correlation" if bar.measure != DIFFERENCE else "|estimate - truth|" + (
            f" in units of {bar.scale}" if bar.scale else "")
        return (f"Caution: on {task} question 7 finds {estimate} outside its bar ({measure} "
                + ", ".join(f"{fmt(c.agreement.point[0])} in {label}" for label, c in outside)
                + f"; bar {bar.bar:g}), so read its values there as the estimate they are, not as the truth"
                + ("; its signed error (estimate - truth) is "
                   + ", ".join(f"{fmt(c.difference.point[0])} in {label}" for label, c in outside
                               if c.difference is not None) if any(c.difference is not None for _, c in outside)
                   else "") + ".")
    if any(c.calibration.estimate == estimate for (t, _, _), cs in analysis.calibrations.items() if t == task
           for c in cs):
        return None  # checked against the truth here, and within its bar
    dims = {r.action_dim for r in results.runs if r.task == task and r.action_dim is not None}
    finding = STUDY_FINDINGS.get(estimate)
    if finding is None or not dims or max(dims) < finding[0]:
        return None
    return (f"Caution: {task} has {max(dims)} action dimensions and no truth to check {estimate} against; in the "
            f"settle study (docs/findings.md) it {finding[1]}.")


BEHAVIOUR_REFERENCE = "bc-only"  # the ablation that clones the data's behaviour: the yardstick of a task without levels


def score_reading(x: str, y: str, difference: stats.Interval) -> str:
    """What an IQM difference of x over y supports, in the three verdicts: 'x beats y' only when material."""
    return worded(difference, stats.SCORE_MATERIAL, f"{x} beats {y}", f"{y} beats {x}",
                  f"{x} and {y} score the same within +-{stats.SCORE_MATERIAL:g}",
                  f"these runs cannot tell whether {x} or {y} scores higher",
                  f"no verdict on {x} against {y} with {plural(difference.runs, 'seed')}")


def tasks_text(matched: Matched) -> str:
    """'the 1 task both ran (arc-2d)', with '; 2 tasks only one side ran left out (a, b)'."""
    text = f"the {plural(len(matched.tasks), 'task')} both ran ({', '.join(matched.tasks)})"
    if matched.left_out:
        text += (f"; {plural(len(matched.left_out), 'task')} only one side ran left out "
                 f"({', '.join(matched.left_out)})")
    return text


def comparison_sentence(results: Results, analysis: Analysis, key: tuple[str, int, str, int]) -> str:
    """'dynamic K=4 against static-routing K=4 over <tasks>: P(X > Y) = ...; IQM ... vs ...; IQM difference ...:
    <verdict>: <reading>.' Everything over the tasks both ran."""
    x, kx, y, ky = key
    ablation_x, ablation_y = results.point(x).ablation, results.point(y).ablation
    matched = analysis.matched[key]
    difference = analysis.score_difference[key]
    return (f"{group_label(x, kx)} against {group_label(y, ky)} over {tasks_text(matched)}: "
            f"P({ablation_x} > {ablation_y}) = {fmt_interval(analysis.improvement[key])}; "
            f"IQM {fmt_interval(matched.iqm_x)} vs {fmt_interval(matched.iqm_y)}; IQM "
            f"{effect_text(difference, stats.SCORE_MATERIAL)}: "
            f"{score_reading(ablation_x, ablation_y, difference)}.")


def verdict_counts(analysis: Analysis, keys: list[tuple[str, int, str, int]], x: str, y: str) -> str:
    """'x higher in 1, y higher in 2, negligible in 0, inconclusive in 3, no verdict (too few seeds) in 0' over
    the IQM differences of `keys`, and, with several, how many material ones chance alone would give."""
    labels = (f"{x} materially higher", f"{y} materially higher", stats.NEGLIGIBLE, stats.INCONCLUSIVE,
              "no verdict (too few seeds)")
    counts = {label: 0 for label in labels}
    for key in keys:
        counts[worded(analysis.score_difference[key], stats.SCORE_MATERIAL, *labels)] += 1
    text = ", ".join(f"{label} in {count}" for label, count in counts.items())
    if len(keys) > 1:
        text += (f"; with {len(keys)} comparisons at 95% each, a lone material one can arise by chance, so read the "
                 "count, not any one comparison")
    return text


def yardstick(results: Results, analysis: Analysis, task: str) -> tuple[str, float] | None:
    """(name, score) of the best reference on a task: the bc-only run's mean score (highest over its K), else the
    task's behaviour_level; None where neither exists."""
    behaviour = [(group_label(a, k), float(s.mean.point[0])) for (t, a, k), s in analysis.per_task.items()
                 if t == task and results.point(a).ablation == BEHAVIOUR_REFERENCE and np.isfinite(s.mean.point[0])]
    if behaviour:
        return max(behaviour, key=lambda item: item[1])
    levels = analysis.references.get(task, {})
    name = next((r.behaviour_level for r in results.runs if r.task == task and r.behaviour_level in levels), None)
    return (name, levels[name]) if name else None


def no_yardstick_notice(results: Results, analysis: Analysis) -> Notice | None:
    """A notice naming the tasks whose scores have no yardstick, with the command that adds bc-only runs."""
    bare = [task for task in results.tasks if yardstick(results, analysis, task) is None]
    if not bare:
        return None
    return Notice("missing", f"No yardstick for the scores on {', '.join(bare)}: the task has no reference levels "
                  "and no bc-only run (behaviour cloning of the data), so a score there cannot be read as good or "
                  "poor, and a variant that beats another may still do worse than the data's own behaviour. Add "
                  "bc-only as the reference:",
                  fill_command(results, ablations=results.ablations + [BEHAVIOUR_REFERENCE]))


def yardstick_sentence(results: Results, analysis: Analysis, task: str, labels: list[tuple[str, int]]) -> str | None:
    """Each run's mean score on `task` against the task's yardstick (its difference read by the three verdicts)."""
    reference = yardstick(results, analysis, task)
    if reference is None:
        return None
    name, level = reference
    parts = []
    for label, k in labels:
        scores = analysis.per_task.get((task, label, k))
        if scores is None or group_label(label, k) == name:
            continue
        offset = scores.mean.minus(level)
        side = worded(offset, stats.SCORE_MATERIAL, "above it", "below it", "level with it", "not told apart from it",
                      "no verdict")
        parts.append(f"{group_label(label, k)} {fmt_interval(scores.mean)} ({side}; "
                     f"{effect_text(offset, stats.SCORE_MATERIAL)})")
    if not parts:
        return None
    return f"Beside the best reference on {task}, {name} ({fmt(level)}): " + "; ".join(parts) + "."


def below_reference(results: Results, analysis: Analysis) -> dict[str, list[tuple[str, float, str]]]:
    """{task: [(run label, mean score, state)]} of the runs scoring below the task's yardstick, each with the state
    of its learning curve over its last third (analysis.trends): 'still rising', 'plateaued' or 'not clearly flat'."""
    below: dict[str, list[tuple[str, float, str]]] = {}
    for (task, ablation, k), scores in analysis.per_task.items():
        reference = yardstick(results, analysis, task)
        mean = float(scores.mean.point[0])
        if reference is None or not np.isfinite(mean) or mean >= reference[1] or results.point(ablation).ablation == \
                BEHAVIOUR_REFERENCE:
            continue
        trend, flat = analysis.trends.get((task, ablation, k)), "not clearly flat"
        state = flat if trend is None else worded(trend, stats.SCORE_MATERIAL, "still rising", flat, "plateaued", flat,
                                                  flat)
        below.setdefault(task, []).append((group_label(ablation, k), mean, state))
    return below


def undertrained_notice(results: Results, analysis: Analysis) -> Notice | None:
    """A warning naming the runs below the task's yardstick (below_reference), each with its curve's state."""
    below = below_reference(results, analysis)
    if not below:
        return None
    parts = []
    for task, runs in below.items():
        name, level = yardstick(results, analysis, task)
        parts.append(f"{task}: " + ", ".join(
            f"{label} ({fmt(mean)}, {'undertrained: still rising' if state == 'still rising' else state})"
            for label, mean, state in runs) + f" below {name} ({fmt(level)})")
    return Notice("warning", "Below the best reference: " + "; ".join(parts) + ". A run still rising over the last "
                  "third of its evaluations is undertrained (train longer with --steps before reading its "
                  "comparisons); a plateaued one has settled below what the data's behaviour scores, which is a "
                  "finding about that run; 'not clearly flat' means its last-third change is inconclusive or has "
                  f"too few seeds (fewer than {stats.MIN_RUNS}) to tell.")
