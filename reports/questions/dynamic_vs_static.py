"""Question 4: does dynamic routing beat a static assignment?

Shows the probability that dynamic routing scores above static-routing (and above every other control) with its
interval and the verdict it supports, the aggregate scores (median, IQM, mean, optimality gap) of every run over
seeds and tasks, and the performance profiles and sample-efficiency curves per K.
"""

from __future__ import annotations

from reports import stats
from reports.analysis import BASELINE_WITHOUT_K, REFERENCE_ABLATION, Analysis
from reports.document import Block, Paragraph, Section, Table
from reports.figures import IntervalRow, Line, Panel, interval_figure, line_figure
from reports.questions.common import STATIC, STEP_AXIS
from reports.runs import Results
from reports.text import fill_command, fmt_interval, group_label, missing, run_ks

ANCHOR, TITLE = "q4-dynamic-vs-static", "4. Does dynamic routing beat a static assignment?"


def improvement_verdict(x: str, y: str, interval: stats.Interval) -> str:
    """What a probability-of-improvement interval of x over y supports, in words."""
    if not interval.has_interval:
        return f"one seed only, so no interval: the data cannot say whether {x} beats {y}"
    if interval.low[0] > 0.5:
        return f"the interval excludes 0.5: {x} beats {y}"
    if interval.high[0] < 0.5:
        return f"the interval lies below 0.5: {y} beats {x}"
    return f"the interval includes 0.5: these runs do not show {x} beating {y}"


def improvement_answer(results: Results, analysis: Analysis) -> list[str]:
    sentences = []
    for (x, kx, y, ky), interval in analysis.improvement.items():
        if y != STATIC:
            continue
        ix, iy = analysis.groups[(x, kx)].aggregates, analysis.groups[(y, ky)].aggregates
        sentences.append(f"At K={kx}, P(dynamic > static-routing) = {fmt_interval(interval)} over "
                         f"{interval.runs} seeds x {len(analysis.groups[(x, kx)].matrix.tasks)} task(s); "
                         f"{improvement_verdict('dynamic', 'static-routing', interval)} (IQM {fmt_interval(ix)} vs "
                         f"{fmt_interval(iy)}).")
    others = [(key, i) for key, i in analysis.improvement.items() if key[2] != STATIC]
    if others:
        wins = [group_label(y, ky) for (x, kx, y, ky), i in others if i.has_interval and i.low[0] > 0.5]
        losses = [group_label(y, ky) for (x, kx, y, ky), i in others if i.has_interval and i.high[0] < 0.5]
        sentences.append(f"Against the other controls, dynamic (at the same K) wins against "
                         f"{', '.join(wins) if wins else 'none'} and loses against "
                         f"{', '.join(losses) if losses else 'none'}; every other comparison is within noise.")
    return sentences


def question_dynamic_vs_static(results: Results, analysis: Analysis) -> Section:
    blocks: list[Block] = []
    if not analysis.groups:
        blocks.append(missing("No run has evaluation scores: there is nothing to aggregate. Runs need evaluations "
                              "(the task must have an evaluator and --eval-interval must be reached).",
                              fill_command(results)))
        return Section(ANCHOR, TITLE, tuple(blocks))
    blocks += [Paragraph(sentence) for sentence in improvement_answer(results, analysis)]
    if REFERENCE_ABLATION not in results.ablations or STATIC not in results.ablations:
        need = [a for a in (REFERENCE_ABLATION, STATIC) if a not in results.ablations]
        blocks.append(missing(f"This comparison needs both dynamic and static-routing runs; missing: "
                              f"{', '.join(need)}.", fill_command(results, ablations=results.ablations + need)))
    rows = []
    for (ablation, k), group in analysis.groups.items():
        m = group.matrix
        rows.append((group_label(ablation, k), *[fmt_interval(group.aggregates, i) for i in range(4)],
                     f"{m.num_runs} x {len(m.tasks)}"))
    blocks.append(Table("Aggregate scores over runs and tasks", ("run", *stats.AGGREGATES, "seeds x tasks"),
                        tuple(rows), note="score: mean of the last 3 evaluations of a seed; 95% stratified bootstrap "
                        f"intervals (rliable, {analysis.reps} repetitions, numpy seed {analysis.seed}); optimality "
                        "gap: distance below a score of 1 (lower is better)."))
    interval_rows = [IntervalRow(group_label(a, k), a, *zip(*[g.aggregates.at(i) for i in range(4)]))
                     for (a, k), g in analysis.groups.items()]
    blocks.append(interval_figure("aggregates", "Aggregate scores with 95% stratified bootstrap intervals (bars) and "
                                  "point estimates (black ticks); no bar where a run has one seed.",
                                  list(stats.AGGREGATES), ["score (1 = best)"] * 3 + ["gap below 1 (lower is better)"],
                                  interval_rows))
    if analysis.improvement:
        rows = [(f"P({group_label(x, kx)} > {group_label(y, ky)})", fmt_interval(i),
                 f"{i.runs}", improvement_verdict(x, y, i)) for (x, kx, y, ky), i in analysis.improvement.items()]
        blocks.append(Table("Probability of improvement of dynamic over each other variant",
                            ("comparison", "P [95% CI]", "seeds (smaller side)", "reading"), tuple(rows),
                            note="P(X > Y): probability that a run of X scores above a run of Y on the same task, "
                                 "averaged over tasks (rliable); 0.5 means no difference."))
        blocks.append(interval_figure(
            "improvement", "Probability of improvement of dynamic over each variant (95% bootstrap intervals); the "
            "dotted line at 0.5 is no difference.", ["P(dynamic > other)"], ["probability"],
            [IntervalRow(f"vs {group_label(y, ky)}" + (f" (dynamic K={kx})" if y == BASELINE_WITHOUT_K else ""), y,
                         *zip(i.at(0))) for (x, kx, y, ky), i in analysis.improvement.items()], reference=0.5,
            xlim=(-0.02, 1.02)))
    panels = []
    for k in run_ks(analysis.groups) or [1]:
        shown = [(a, kk, g) for (a, kk), g in analysis.groups.items() if kk == k or a == BASELINE_WITHOUT_K]
        panels.append(Panel(f"Performance profile, K={k}", "score threshold tau (1 = best)",
                            "fraction of runs with score > tau",
                            tuple(Line(a, a, stats.PROFILE_TAUS, g.profile.point, g.profile.low, g.profile.high)
                                  for a, _, g in shown), ylim=(-0.02, 1.02)))
        curves = [(a, g.sample_efficiency) for a, _, g in shown if g.sample_efficiency is not None]
        if curves:
            panels.append(Panel(f"Sample efficiency, K={k}", STEP_AXIS, "IQM of evaluation score",
                                tuple(Line(a, a, c.steps, c.estimate.point, c.estimate.low, c.estimate.high)
                                      for a, c in curves)))
    blocks.append(line_figure("profiles", "Left: performance profiles (fraction of runs above each score, over all "
                              "tasks). Right: IQM of the evaluation score against training step. One row per K "
                              "(fql, which has no K, in every row). Bands: 95% stratified bootstrap intervals.",
                              panels, columns=2))
    return Section(ANCHOR, TITLE, tuple(blocks))
