"""Not a question of its own: what several questions share. The static-routing control's name, diagnostic
look-ups, effect sizes (dynamic minus static-routing late, late minus early) judged against each quantity's
materiality threshold (questions 1-3), the diagnostic figure, table and per-task blocks those questions show
(mean over seeds with 95% bootstrap intervals), and the task's reference levels beside the scores (questions 4-5
and the per-task scores): the levels drawn and tabulated, and the runs that score below a random supported mode.
"""

from __future__ import annotations

import numpy as np

from diagnostics.quantities import QUANTITIES, REPORTING
from drol_diag.tasks.base import undertrained_level
from reports import stats
from reports.analysis import (
    DIAGNOSTICS,
    PER_PROBE,
    REFERENCE_ABLATION,
    TREND_ROWS,
    Analysis,
    DiagnosticSummary,
    is_baseline,
)
from reports.document import Block, Figure, Notice, Paragraph, Table
from reports.figures import Line, Panel, line_figure
from reports.runs import Results, base_ablation, grid_label, grid_settings_text
from reports.text import effect_text, fill_command, fmt, fmt_interval, group_label, plural, run_ks

STATIC = "static-routing"
STEP_AXIS = "training step (gradient updates)"


def get(analysis: Analysis, variable: str, task: str, ablation: str, k: int) -> DiagnosticSummary | None:
    return analysis.diagnostics.get((variable, task, ablation, k))


def groups_of(results: Results, ablation: str) -> list[tuple[str, int]]:
    """The (label, K) groups of `ablation`: the ablation itself, or each of its grid points ("dynamic bc_coef=0.3")."""
    return [(label, k) for label, k in results.groups if base_ablation(label) == ablation]


def has_ablation(results: Results, ablation: str) -> bool:
    """Whether `ablation` was run, at any grid point."""
    return bool(groups_of(results, ablation))


def matched(results: Results, label: str, ablation: str) -> str | None:
    """The label of `ablation` run at the grid point of `label` (the same swept settings), or None where it was not:
    matched("dynamic bc_coef=0.3", "static-routing") -> "static-routing bc_coef=0.3"."""
    other = grid_label(ablation, results.point(label))
    return other if other in results.ablations else None


def at_point(label: str) -> str:
    """', bc_coef=0.3' for a grid point's label (its swept settings, to follow "K=4"); '' without a grid."""
    settings = grid_settings_text(label)
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
    return stats.difference_interval(dyn.late_values, sta.late_values, analysis.reps, analysis.seed)


def late_comparisons(results: Results, analysis: Analysis, variable: str, task: str,
                     what: str) -> list[tuple[str, stats.Interval]]:
    """Per dynamic run with a static-routing run at its K and grid point: ('At K=4, <what>, dynamic minus
    static-routing late: difference ...: no material difference (threshold 0.05).', the difference). States the
    effect, never a cause."""
    comparisons = []
    for label, k in groups_of(results, REFERENCE_ABLATION):
        difference = late_difference(results, analysis, variable, task, label, k)
        if difference is not None:
            effect = effect_text(difference, material_threshold(variable))
            comparisons.append((f"At K={k}{at_point(label)}, {what}, dynamic minus static-routing late: {effect}.",
                                difference))
    return comparisons


def trend_difference(analysis: Analysis, summary: DiagnosticSummary) -> stats.Interval:
    """Late minus early of one run's quantity, per seed, with a 95% bootstrap interval over seeds."""
    return stats.paired_difference_interval(summary.early_values, summary.late_values, analysis.reps, analysis.seed)


def too_few_rows(summary: DiagnosticSummary, what: str) -> str:
    """Why an early-versus-late verdict cannot be given, and what would give one."""
    shown = ("early and late are the same value" if summary.rows < 2
             else "early and late are neighbouring values")
    return (f"with {plural(summary.rows, 'logged value')} of {what}, {shown}: too few to tell (a verdict needs "
            f"at least {TREND_ROWS}; log more often with --log-interval, or train longer)")


def fill_static_command(results: Results) -> str:
    """The sweep command that adds static-routing runs beside this folder's ablations."""
    return fill_command(results, ablations=results.ablations + [STATIC])


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
            lines = []
            for ablation in results.ablations:
                run_k = 1 if is_baseline(ablation) else k
                summary = get(analysis, variable, task, ablation, run_k)
                if summary is None or (is_baseline(ablation) and k != ks[0] and len(ks) > 1):
                    continue
                e = summary.curve.estimate
                lines.append(Line(ablation, ablation, summary.curve.steps, e.point, e.low, e.high))
            if lines:
                panels.append(diagnostic_panel(variable, f"{diagnostic_label(variable)}, K={k}", STEP_AXIS,
                                               tuple(lines), references.get(variable)))
    if not panels:
        return None
    return line_figure(name, caption, panels, columns=min(len(ks), 3))


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
            cells = ["-" if s is None else f"{fmt_interval(s.early)} (one logged value)" if s.rows < 2 else
                     f"{fmt_interval(s.early)} -> {fmt_interval(s.late)}" for s in summaries]
            rows.append((group_label(ablation, k), *cells, str(len(present[0].seeds))))
    if not rows:
        return None
    columns = ("run", *[diagnostic_label(n) for n in names], "seeds")
    return Table(caption, columns, tuple(rows), note="first logged value -> mean over the last third of training; "
                 "mean over seeds [95% bootstrap interval over seeds]")


def task_blocks(task: str, sentences: list[str], figure: Figure | None, table: Table | None) -> list[Block]:
    """A diagnostic question's blocks for one task: its answer paragraphs, then its figure and its table
    where the data give them."""
    return [Paragraph(f"{task}: {sentence}") for sentence in sentences] + [b for b in (figure, table) if b]


# ------------------------------------------------------------------------------------------------
# Reference levels beside the scores


def score_levels(results: Results, analysis: Analysis) -> tuple[tuple[float, str], ...]:
    """(score, label) of each reference policy, for figures of scores over tasks: the task's own levels when
    the runs are on one task (labelled by the policy's name); over several, the mean of the tasks' levels
    (what the Mean aggregate of that policy would be); none unless every task has the same reference policies."""
    per_task = [analysis.references.get(task, {}) for task in results.tasks]
    names = list(per_task[0]) if per_task else []
    if not names or any(list(levels) != names for levels in per_task):
        return ()
    if len(per_task) == 1:
        return tuple((levels[name], name) for levels in per_task for name in names)
    return tuple((float(np.mean([levels[name] for levels in per_task])),
                  f"{name} (mean over {len(per_task)} tasks)") for name in names)


def reference_aggregates(results: Results, analysis: Analysis) -> dict[str, np.ndarray]:
    """{reference policy: its aggregates (stats.AGGREGATES) over the tasks}, as a (1, tasks) score matrix; empty
    unless every task has the same reference policies."""
    per_task = [analysis.references.get(task, {}) for task in results.tasks]
    names = list(per_task[0]) if per_task else []
    if not names or any(list(levels) != names for levels in per_task):
        return {}
    return {name: stats.aggregate_scores(np.array([[levels[name] for levels in per_task]])) for name in names}


def undertrained(results: Results, analysis: Analysis) -> dict[str, list[tuple[str, float]]]:
    """{task: [(run label, mean score)]} of the runs whose mean score over seeds lies below the task's
    level of a randomly played supported action (drol_diag.tasks.base.undertrained_level)."""
    below: dict[str, list[tuple[str, float]]] = {}
    for (task, ablation, k), scores in analysis.per_task.items():
        level = undertrained_level(analysis.references.get(task, {}))
        mean = float(scores.mean.point[0])
        if level is not None and np.isfinite(mean) and mean < level[1]:
            below.setdefault(task, []).append((group_label(ablation, k), mean))
    return below


def undertrained_notice(results: Results, analysis: Analysis) -> Notice | None:
    """A warning naming the runs that score below a randomly played supported action: undertrained, not a finding."""
    below = undertrained(results, analysis)
    if not below:
        return None
    parts = []
    for task, runs in below.items():
        name, level = undertrained_level(analysis.references[task])
        parts.append(f"{task}: {', '.join(f'{label} ({fmt(mean)})' for label, mean in runs)} below the {name} "
                     f"level {fmt(level)}")
    return Notice("warning", "Undertrained, not a finding: " + "; ".join(parts) + ". A policy that plays a "
                  "supported action at random (a random supported mode, a random behaviour action) at every state "
                  "scores that much; runs below it have not learned which supported actions are better, so "
                  "differences among them say nothing about routing. Train longer (--steps) "
                  "before reading the comparisons.")
