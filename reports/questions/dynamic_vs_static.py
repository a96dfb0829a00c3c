"""Question 4: does dynamic routing beat a static assignment? Every comparison over the tasks both ran, the
count of verdicts, each run beside its task's yardstick, the aggregates (and which coincide by construction),
the performance profiles and sample-efficiency curves."""

from __future__ import annotations

from reports import stats
from reports.analysis import REFERENCE_ABLATION, Analysis, is_baseline
from reports.document import Block, Paragraph, Section, Table
from reports.figures import IntervalRow, Line, Panel, interval_figure, line_figure
from reports.questions.common import (
    STATIC,
    STEP_AXIS,
    comparison_sentence,
    no_yardstick_notice,
    reference_aggregates,
    score_levels,
    undertrained_notice,
    verdict_counts,
    yardstick_sentence,
)
from reports.runs import Results
from reports.text import fill_command, fmt, fmt_interval, group_label, missing, plural, run_ks

ANCHOR, TITLE = "q4-dynamic-vs-static", "4. Does dynamic routing beat a static assignment?"
REFERENCE_ROW = "reference: "  # the label prefix of a reference policy's row in the score table and figure


def improvement_answer(results: Results, analysis: Analysis) -> list[str]:
    """One sentence per comparison of dynamic with static-routing (over the tasks both ran), then the count of the
    verdicts against the other controls (never one chosen comparison)."""
    static = [key for key in analysis.improvement if results.point(key[2]).ablation == STATIC]
    sentences = [comparison_sentence(results, analysis, key) for key in static]
    if len(static) > 1:
        sentences.append(f"Over the {len(static)} comparisons of dynamic with static-routing: "
                         f"{verdict_counts(analysis, static, 'dynamic', 'static-routing')}.")
    others = [key for key in analysis.improvement if results.point(key[2]).ablation != STATIC]
    if others:
        sentences.append(f"Against the other controls ({plural(len(others), 'comparison')} of dynamic, each at its K "
                         f"and over the tasks both ran; table below): "
                         f"{verdict_counts(analysis, others, 'dynamic', 'the control')}.")
    for task in results.tasks:
        sentence = yardstick_sentence(results, analysis, task, list(results.groups))
        if sentence:
            sentences.append(sentence)
    return sentences


def coinciding_aggregates(results: Results, analysis: Analysis) -> list[str]:
    """Sentences saying which aggregates are equal by construction: with one task, mean and median; with fewer
    than 4 runs x tasks, IQM and mean."""
    sentences = []
    if len(results.tasks) == 1:
        sentences.append(f"With one task ({results.tasks[0]}), Mean and Median are the same number: rliable takes "
                         "both over the per-task means, and one task has one mean. They are not two findings.")
    untrimmed = [group_label(a, k) for (a, k), g in analysis.groups.items()
                 if int(0.25 * g.matrix.num_runs * len(g.matrix.tasks)) == 0]
    if untrimmed:
        sentences.append(f"For {', '.join(untrimmed)} the IQM equals the Mean: with fewer than 4 runs x tasks the "
                         "interquartile mean trims nothing (a quarter of the scores, rounded down, is none).")
    return sentences


def aggregates_table(results: Results, analysis: Analysis) -> Table:
    """Every run's aggregates with intervals, then one row per reference policy (computed, so no interval)."""
    rows = []
    for (ablation, k), group in analysis.groups.items():
        m = group.matrix
        rows.append((group_label(ablation, k), *[fmt_interval(group.aggregates, i) for i in range(4)],
                     f"{m.num_runs} x {len(m.tasks)}"))
    for name, values in reference_aggregates(results, analysis).items():
        rows.append((REFERENCE_ROW + name, *[fmt(v) for v in values], "reference policy"))
    note = ("score: mean of the last 3 evaluations of a seed on the run's schedule; 95% stratified bootstrap "
            "intervals (rliable, "
            f"{analysis.reps} repetitions, numpy seed {analysis.seed}); optimality gap: distance below a score of 1 "
            f"(lower is better). A difference in score is called material from {stats.SCORE_MATERIAL:g} up.")
    if any(row[0].startswith(REFERENCE_ROW) for row in rows):
        note += (" Reference rows: fixed policies scored with the task's own evaluation (drol_diag.tasks.onestep): "
                 "below the random supported mode (or random behaviour action) a run is undertrained.")
    return Table("Aggregate scores over runs and tasks", ("run", *stats.AGGREGATES, "seeds x tasks"), tuple(rows),
                 note=note)


def task_difference_table(analysis: Analysis) -> Table:
    """Each comparison over several tasks, task by task: the IQM difference over the task's seeds and its verdict."""
    rows = tuple((task, f"{group_label(x, kx)} - {group_label(y, ky)}", fmt_interval(difference), f"{difference.runs}",
                  stats.verdict(difference, stats.SCORE_MATERIAL))
                 for (task, x, kx, y, ky), difference in analysis.task_difference.items())
    return Table("IQM difference task by task", ("task", "comparison", "IQM difference [95% CI]",
                                                 "seeds (smaller side)", "verdict"), rows,
                 note="The comparisons of the table above, one task at a time: IQM of X minus IQM of Y over that "
                      "task's seeds, 95% bootstrap interval over the seeds; its verdict as everywhere in this report "
                      f"(threshold {stats.SCORE_MATERIAL:g}). With several tasks, some material differences can "
                      "arise by chance: read the pattern, not one row.")


def score_panels(results: Results, analysis: Analysis) -> list[Panel]:
    """Per K: the performance profile, and the sample-efficiency curve with the reference levels as lines."""
    panels = []
    levels = score_levels(results, analysis)
    for k in run_ks(analysis.groups) or [1]:
        shown = [(a, kk, g) for (a, kk), g in analysis.groups.items() if kk == k or is_baseline(a)]
        panels.append(Panel(f"Performance profile, K={k}", "score threshold tau (1 = best)",
                            "fraction of runs with score > tau",
                            tuple(Line(a, results.point(a).ablation, stats.PROFILE_TAUS, g.profile.point, g.profile.low,
                                       g.profile.high, key=a)
                                  for a, _, g in shown), ylim=(-0.02, 1.02)))
        curves = [(a, g.sample_efficiency) for a, _, g in shown if g.sample_efficiency is not None]
        if curves:
            panels.append(Panel(f"Sample efficiency, K={k}", STEP_AXIS, "IQM of evaluation score",
                                tuple(Line(a, results.point(a).ablation, c.steps, c.estimate.point, c.estimate.low,
                                           c.estimate.high, key=a)
                                      for a, c in curves), levels=levels))
    return panels


def question_dynamic_vs_static(results: Results, analysis: Analysis) -> Section:
    blocks: list[Block] = []
    if not analysis.groups:
        blocks.append(missing("No run has evaluation scores: there is nothing to aggregate. Runs need evaluations "
                              "(the task must have an evaluator and --eval-interval must be reached).",
                              fill_command(results)))
        return Section(ANCHOR, TITLE, tuple(blocks))
    for notice in (undertrained_notice(results, analysis), no_yardstick_notice(results, analysis)):
        if notice is not None:
            blocks.append(notice)
    blocks += [Paragraph(sentence) for sentence in improvement_answer(results, analysis)]
    ablations = [results.point(a).ablation for a in results.ablations]
    if REFERENCE_ABLATION not in ablations or STATIC not in ablations:
        need = [a for a in (REFERENCE_ABLATION, STATIC) if a not in ablations]
        blocks.append(missing(f"This comparison needs both dynamic and static-routing runs; missing: "
                              f"{', '.join(need)}.", fill_command(results, ablations=results.ablations + need)))
    blocks.append(aggregates_table(results, analysis))
    blocks += [Paragraph(sentence) for sentence in coinciding_aggregates(results, analysis)]
    interval_rows = [IntervalRow(group_label(a, k), results.point(a).ablation,
                                 *zip(*[g.aggregates.at(i) for i in range(4)]))
                     for (a, k), g in analysis.groups.items()]
    nan = (float("nan"),) * 4
    interval_rows += [IntervalRow(REFERENCE_ROW + name, "reference", tuple(float(v) for v in values), nan, nan)
                      for name, values in reference_aggregates(results, analysis).items()]
    blocks.append(interval_figure("aggregates", "Aggregate scores with 95% stratified bootstrap intervals (bars) and "
                                  "point estimates (black ticks); no bar where a run has one seed"
                                  + ("; reference rows are fixed policies' scores (computed, no interval)."
                                     if len(interval_rows) > len(analysis.groups) else "."),
                                  list(stats.AGGREGATES), ["score (1 = best)"] * 3 + ["gap below 1 (lower is better)"],
                                  interval_rows))
    if analysis.improvement:
        rows = [(f"P({group_label(x, kx)} > {group_label(y, ky)})", fmt_interval(i), f"{i.runs}",
                 fmt_interval(analysis.score_difference[(x, kx, y, ky)]),
                 stats.verdict(analysis.score_difference[(x, kx, y, ky)], stats.SCORE_MATERIAL),
                 ", ".join(analysis.matched[(x, kx, y, ky)].tasks))
                for (x, kx, y, ky), i in analysis.improvement.items()]
        blocks.append(Table("Probability of improvement of dynamic over each other variant",
                            ("comparison", "P [95% CI]", "seeds (smaller side)", "IQM difference [95% CI]",
                             "verdict", "tasks both ran"),
                            tuple(rows),
                            note="P(X > Y): probability that a run of X scores above a run of Y on the same task, "
                                 "averaged over tasks (rliable); 0.5 means no difference. IQM difference: IQM of X "
                                 "minus IQM of Y over the tasks both ran; its verdict as everywhere in this report "
                                 f"(threshold {stats.SCORE_MATERIAL:g})."))
    if analysis.task_difference:
        blocks.append(task_difference_table(analysis))
    if len(analysis.improvement) >= 3:  # (one or two intervals read as well from the table as from a figure)
        blocks.append(interval_figure(
            "improvement", "Probability of improvement of dynamic over each variant (95% bootstrap intervals); the "
            "dotted line at 0.5 is no difference.", ["P(dynamic > other)"], ["probability"],
            [IntervalRow(f"vs {group_label(y, ky)}" + (f" (dynamic K={kx})" if is_baseline(y) else ""),
                         results.point(y).ablation,
                         *zip(i.at(0))) for (x, kx, y, ky), i in analysis.improvement.items()], reference=0.5,
            xlim=(-0.02, 1.02)))
    has_baseline = any(is_baseline(a) for a, _ in analysis.groups)
    levels = score_levels(results, analysis)
    blocks.append(line_figure("profiles", "Left: performance profiles (fraction of runs above each score, over all "
                              "tasks). Right: IQM of the evaluation score against training step"
                              + (", with the task's reference policies as grey lines" if levels else "")
                              + ". One row per K"
                              + (" (fql, which has no K, in every row)" if has_baseline else "")
                              + ". Bands: 95% stratified bootstrap intervals.",
                              score_panels(results, analysis), columns=2))
    return Section(ANCHOR, TITLE, tuple(blocks))
