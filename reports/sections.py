"""The report's sections: for each referee question, figures, tables and a paragraph written from
the numbers (reports.analysis), or, where the runs cannot answer it, the sweep command that would.

Wording rules: every number is followed by its 95% interval and the seed count; a claim is made
only when an interval supports it (a difference only when intervals do not overlap, an improvement
only when the probability-of-improvement interval excludes 0.5); otherwise the text says the data
do not show it.
"""

from __future__ import annotations

import shlex

import numpy as np

from reports import stats
from reports.analysis import (BASELINE_WITHOUT_K, DIAGNOSTICS, PER_PROBE, REFERENCE_ABLATION, Analysis,
                              DiagnosticSummary)
from reports.document import Command, Figure, Notice, Paragraph, Section, Table
from reports.figures import IntervalRow, Line, Panel, interval_figure, line_figure
from reports.published import PAPER_UPDATES, PUBLISHED, published_column, published_family
from reports.runs import Results

STATIC = "static-routing"
HELD_OUT_OOD = 0.05  # held-out data exceed the out-of-support threshold (their own 95th percentile) 5% of the time
STEP_AXIS = "training step (gradient updates)"


# ------------------------------------------------------------------------------------------------
# Formatting


def fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}g}"


def fmt_interval(interval: stats.Interval, i: int = 0, digits: int = 3) -> str:
    """'0.552 [0.471, 0.567]' or '0.552 (no interval: 1 seed)'."""
    point, low, high = interval.at(i)
    if not np.isfinite(point):
        return "n/a"
    if not np.isfinite(low):
        return f"{fmt(point, digits)} (no interval: {interval.runs} seed{'s' if interval.runs != 1 else ''})"
    return f"{fmt(point, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def group_label(ablation: str, k: int) -> str:
    return ablation if ablation == BASELINE_WITHOUT_K else f"{ablation} K={k}"


def seeds_text(seeds: tuple[int, ...] | list[int]) -> str:
    return ",".join(map(str, seeds)) if seeds else "none"


def overlaps(a: stats.Interval, b: stats.Interval) -> bool:
    """Whether two (1,) intervals overlap (or either has none)."""
    if not (a.has_interval and b.has_interval):
        return True
    return not (a.high[0] < b.low[0] or b.high[0] < a.low[0])


# ------------------------------------------------------------------------------------------------
# Commands that fill what is missing


def fill_command(results: Results, *, ablations: list[str] | None = None, ks: list[int] | None = None,
                 seeds: str | None = None) -> str:
    """The `drol-diag sweep` command that adds the named ablations / K values / seeds to this folder
    with the settings its runs already have (finished groups are skipped by the sweep)."""
    ablations = ablations or results.ablations
    ks = ks or sorted({k for a, k in results.groups if a != BASELINE_WITHOUT_K}) or [1]
    root = str(results.root)
    parts = ["drol-diag", "sweep"]
    sweep_file = results.root / "sweep.toml"
    if sweep_file.exists():
        parts += ["--from", str(sweep_file)]
    else:
        parts += ["--tasks", ",".join(results.tasks), *results.runs[0].sweep_options]
    parts += ["--ablations", ",".join(ablations), "--k", ",".join(map(str, ks))]
    parts += ["--seeds", seeds or seeds_text(sorted({s for r in results.runs for s in r.seeds}))]
    if seeds:
        parts += ["--force"]
    parts += ["--out", root]
    return " ".join(shlex.quote(p) for p in parts)


def missing(text: str, command: str) -> Notice:
    return Notice("missing", text, command)


# ------------------------------------------------------------------------------------------------
# Diagnostic figures and tables


def diagnostic_figure(results: Results, analysis: Analysis, task: str, names: list[str], name: str,
                      caption: str, references: dict[str, tuple[float, str]] | None = None,
                      routing_only: bool = False) -> Figure | None:
    """Panels (quantity x K), each with one line per ablation: mean over seeds with its band.
    `routing_only` leaves out K=1 (one candidate: nothing to route) when other K were run."""
    references = references or {}
    ks = sorted({k for a, k in results.groups if a != BASELINE_WITHOUT_K}) or [1]
    if routing_only and len(ks) > 1:
        ks = [k for k in ks if k > 1]
    panels = []
    for variable in names:
        for k in ks:
            lines = []
            for ablation in results.ablations:
                run_k = 1 if ablation == BASELINE_WITHOUT_K else k
                summary = analysis.diagnostics.get((variable, task, ablation, run_k))
                if summary is None or (ablation == BASELINE_WITHOUT_K and k != ks[0] and len(ks) > 1):
                    continue
                e = summary.curve.estimate
                lines.append(Line(ablation, ablation, summary.curve.steps, e.point, e.low, e.high))
            if lines:
                label = DIAGNOSTICS[variable].label if variable in DIAGNOSTICS else PER_PROBE[variable]
                unit = DIAGNOSTICS[variable].unit if variable in DIAGNOSTICS else "count"
                panels.append(Panel(f"{label}, K={k}", STEP_AXIS, unit, tuple(lines),
                                    reference=references.get(variable)))
    if not panels:
        return None
    return line_figure(name, caption, panels, columns=min(len(ks), 3))


def diagnostic_table(results: Results, analysis: Analysis, task: str, names: list[str], caption: str) -> Table | None:
    """Per (ablation, K): each quantity early -> late, with intervals over seeds."""
    rows = []
    for ablation, k in results.groups:
        summaries = [analysis.diagnostics.get((variable, task, ablation, k)) for variable in names]
        present = [s for s in summaries if s is not None]
        if present:
            cells = [f"{fmt_interval(s.early)} -> {fmt_interval(s.late)}" if s else "-" for s in summaries]
            rows.append((group_label(ablation, k), *cells, str(len(present[0].seeds))))
    if not rows:
        return None
    columns = ("run", *[DIAGNOSTICS[n].label if n in DIAGNOSTICS else PER_PROBE[n] for n in names], "seeds")
    return Table(caption, columns, tuple(rows), note="first logged value -> mean over the last third of training; "
                 "mean over seeds [95% bootstrap interval over seeds]")


def get(analysis: Analysis, variable: str, task: str, ablation: str, k: int) -> DiagnosticSummary | None:
    return analysis.diagnostics.get((variable, task, ablation, k))


def dynamic_vs_static(analysis: Analysis, variable: str, task: str, k: int) -> str | None:
    """How the late values of dynamic and static-routing at K compare: None (one is missing),
    "overlap", "dynamic higher" or "dynamic lower" (intervals apart)."""
    dyn, sta = get(analysis, variable, task, REFERENCE_ABLATION, k), get(analysis, variable, task, STATIC, k)
    if dyn is None or sta is None:
        return None
    if overlaps(dyn.late, sta.late):
        return "overlap"
    return "dynamic higher" if dyn.late.point[0] > sta.late.point[0] else "dynamic lower"


def dynamic_ks(results: Results) -> list[int]:
    return results.ks(REFERENCE_ABLATION)


# ------------------------------------------------------------------------------------------------
# Question 1: does ownership move, and does it settle?


def ownership_answer(results: Results, analysis: Analysis, task: str) -> list[str]:
    sentences = []
    for k in dynamic_ks(results):
        if k == 1:
            sentences.append("With K=1 there is one candidate per state, so nothing is routed and nothing can flip.")
            continue
        flips = get(analysis, "flip_rate", task, REFERENCE_ABLATION, k)
        if flips is None:
            continue
        seeds = len(flips.seeds)
        text = (f"Under dynamic routing with K={k} ({seeds} seeds), {fmt_interval(flips.early)} of probe states "
                f"changed owner between the first two logs and {fmt_interval(flips.late)} per log interval late in "
                "training")
        if flips.early.point[0] == 0 and flips.late.point[0] == 0:
            text += ": ownership did not move."
        elif flips.late.has_interval and flips.early.has_interval and flips.late.high[0] < flips.early.low[0]:
            text += ": ownership moves, and it settles (the late interval lies below the early one)"
            text += ", but it has not stopped." if flips.late.low[0] > 0 else "."
        elif flips.late.has_interval and flips.late.low[0] > 0:
            text += ": ownership keeps moving; these runs do not show it settling."
        else:
            text += ": the data do not show whether it settles."
        returns = get(analysis, "return_rate", task, REFERENCE_ABLATION, k)
        if returns is not None and flips.late.point[0] > 0:
            share = returns.late.point[0] / flips.late.point[0]
            kind = ("most late flips go back to an owner the probe had before (back and forth)" if share >= 0.5
                    else "most late flips hand a probe to a candidate that never owned it (migration, not "
                         "back and forth)")
            text += f" Returns to a former owner are {fmt_interval(returns.late)} per interval, {share:.0%} of flips: {kind}."
        per_probe = get(analysis, "never_flipped", task, REFERENCE_ABLATION, k)
        if per_probe is not None:
            text += f" By the end, {fmt_interval(per_probe.curve.estimate, -1)} of probes were never reassigned."
        sentences.append(text)
    for k in results.ks(STATIC):
        flips = get(analysis, "flip_rate", task, STATIC, k)
        if flips is None:
            continue
        if float(np.max(flips.curve.estimate.point)) == 0.0:
            text = (f"static-routing (K={k}) never reassigns: its flip rate is 0 at every logged step in all "
                    f"{len(flips.seeds)} seeds, as a frozen owner table must give.")
        else:
            text = (f"static-routing (K={k}) reassigned owners (largest flip rate "
                    f"{float(np.max(flips.curve.estimate.point)):.3g}): its owner table is not frozen, which is a bug.")
        mismatch = get(analysis, "owner_mismatch", task, STATIC, k)
        if mismatch is not None:
            text += (f" Its frozen owner is no longer the nearest candidate for {fmt_interval(mismatch.late)} of "
                     "probes late in training (owners overtaken by other candidates).")
        sentences.append(text)
    return sentences


def task_blocks(task: str, sentences: list[str], figure: Figure | None, table: Table | None) -> list:
    """A diagnostic question's blocks for one task: its answer paragraphs, then its figure and its table
    where the data give them."""
    return [Paragraph(f"{task}: {sentence}") for sentence in sentences] + [b for b in (figure, table) if b]


def question_ownership(results: Results, analysis: Analysis) -> Section:
    blocks: list = [Paragraph(
        "Each run routes a fixed set of probe transitions, each with its own fixed latent bank, at every log. "
        "A flip is a probe whose owner changed since the previous log; a return is a flip back to an owner the "
        "probe had before and lost (A -> B -> A). static-routing, with its frozen owner table, is the zero line.")]
    if REFERENCE_ABLATION not in results.ablations:
        blocks.append(missing("No dynamic runs: this question is about dynamic routing.",
                              fill_command(results, ablations=[REFERENCE_ABLATION, STATIC])))
    names = ["flip_rate", "return_rate", "nearest_flip_rate", "owner_mismatch", "winner_ari"]
    for task in results.tasks:
        figure = diagnostic_figure(results, analysis, task, ["flip_rate", "return_rate", "owner_mismatch",
                                                            "winner_ari"], f"ownership-{task}",
                                   f"{task}: ownership over training. Flip and return rates per log interval, the "
                                   "fraction of probes whose owner is not the nearest candidate, and the adjusted "
                                   "Rand index of the owner partition against the previous log; mean over seeds, "
                                   "bands 95% bootstrap intervals. K=1 (one candidate) is left out.",
                                   routing_only=True)
        table = diagnostic_table(results, analysis, task, names + ["flips_per_probe", "never_flipped"],
                                 f"{task}: ownership quantities, early -> late")
        blocks += task_blocks(task, ownership_answer(results, analysis, task), figure, table)
    if STATIC not in results.ablations and REFERENCE_ABLATION in results.ablations:
        blocks.append(missing("No static-routing runs: the zero line (a frozen assignment) is missing.",
                              fill_command(results, ablations=results.ablations + [STATIC])))
    return Section("q1-ownership", "1. Does ownership move, and does it settle?", tuple(blocks))


# ------------------------------------------------------------------------------------------------
# Question 2: do critic-driven moves pull winners off the data?


def support_reference(results: Results, task: str) -> float | None:
    """Median of the data's own nearest-neighbour distances (held-out pairs) for a task."""
    if "support_dist_ref" not in results.logs:
        return None
    values = np.asarray(results.logs["support_dist_ref"].sel(task=task).values, np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None


def support_answer(results: Results, analysis: Analysis, task: str, reference: float | None) -> list[str]:
    sentences = []
    for ablation, k in results.groups:
        if ablation not in (REFERENCE_ABLATION, STATIC, BASELINE_WITHOUT_K):
            continue
        label = group_label(ablation, k)
        dist = get(analysis, "winner_data_dist_mean", task, ablation, k)
        ood = get(analysis, "ood_frac", task, ablation, k)
        support = get(analysis, "support_dist_mean", task, ablation, k)
        gap = get(analysis, "q_gap", task, ablation, k)
        parts = []
        if dist is not None:
            drift = dist.late.has_interval and dist.early.has_interval and dist.late.low[0] > dist.early.high[0]
            closer = dist.late.has_interval and dist.early.has_interval and dist.late.high[0] < dist.early.low[0]
            parts.append(f"the winner's distance to its data action goes from {fmt_interval(dist.early)} to "
                         f"{fmt_interval(dist.late)} (RMS per action dimension): "
                         + ("winners drift away from the data over training" if drift else
                            "winners move closer to the data over training" if closer else
                            "no drift away from the data is detectable"))
        if ood is not None:
            above = ood.late.has_interval and ood.late.low[0] > HELD_OUT_OOD
            parts.append(f"{fmt_interval(ood.late)} of deployed actions lie outside the data's support late in "
                         f"training, against {HELD_OUT_OOD:.0%} for held-out data by construction: "
                         + ("the policy leaves the support more often than the data themselves do" if above else
                            "no more often than held-out data, within the interval" if ood.late.has_interval else
                            "with one seed this cannot be told apart from the data's own rate"))
        if support is not None and reference:
            parts.append(f"their distance to the nearest training pair is {fmt_interval(support.late)}, "
                         f"{support.late.point[0] / reference:.2g} times the data's own nearest-neighbour median "
                         f"({reference:.3g})")
        if gap is not None:
            parts.append(f"Q(winner) - Q(data action) = {fmt_interval(gap.late)}")
        if parts:
            sentences.append(f"{label}: " + "; ".join(parts) + ".")
    for k in dynamic_ks(results):
        comparison = dynamic_vs_static(analysis, "ood_frac", task, k)
        if comparison == "overlap":
            sentences.append(f"At K={k} the out-of-support fractions of dynamic and static-routing overlap: these "
                             "runs do not show dynamic routing pulling actions off the data more than a static "
                             "assignment does.")
        elif comparison is not None:
            more = "dynamic" if comparison == "dynamic higher" else "static-routing"
            sentences.append(f"At K={k}, {more} deploys more out-of-support actions (the intervals do not overlap).")
    return sentences


def question_support(results: Results, analysis: Analysis) -> Section:
    blocks: list = [Paragraph(
        "winner_data_dist is the RMS-per-dimension distance between each probe's winning candidate and its data "
        "action. support_dist is the distance from the deployed action (one prior sample, as at test time) to the "
        "nearest training (state, action) pair in standardised joint space; the yardstick is the same distance for "
        "held-out pairs (the dotted line: its median), and an action is out of support beyond the held-out 95th "
        "percentile, so held-out data score 5% there by construction.")]
    for task in results.tasks:
        reference = support_reference(results, task)
        references = {"ood_frac": (HELD_OUT_OOD, "held-out data (5%)")}
        if reference:
            references["support_dist_mean"] = (reference, "held-out data: median distance")
        figure = diagnostic_figure(results, analysis, task, ["winner_data_dist_mean", "support_dist_mean",
                                                            "ood_frac", "q_gap"], f"support-{task}",
                                   f"{task}: distance of winners and deployed actions from the data, and the "
                                   "critic's preference for winners over data actions; mean over seeds, bands 95% "
                                   "bootstrap intervals.", references)
        table = diagnostic_table(results, analysis, task, ["winner_data_dist_mean", "support_dist_mean", "ood_frac",
                                                           "q_gap"], f"{task}: support quantities, early -> late")
        blocks += task_blocks(task, support_answer(results, analysis, task, reference), figure, table)
    return Section("q2-support", "2. Do critic-driven moves pull winners off the data?", tuple(blocks))


# ------------------------------------------------------------------------------------------------
# Question 3: do the critic and BC directions disagree, and does routing resolve it?


def conflict_answer(results: Results, analysis: Analysis, task: str) -> list[str]:
    sentences = []
    for ablation, k in results.groups:
        cos = get(analysis, "grad_cos", task, ablation, k)
        frac = get(analysis, "conflict_frac", task, ablation, k)
        if cos is None or frac is None:
            continue
        disagree = cos.late.has_interval and cos.late.high[0] < 0
        agree = cos.late.has_interval and cos.late.low[0] > 0
        verdict = ("the two gradients oppose each other" if disagree else "the two gradients point the same way"
                   if agree else "the sign of their agreement is not settled by these seeds")
        sentences.append(f"{group_label(ablation, k)}: cosine between the BC and critic gradients "
                         f"{fmt_interval(cos.late)} late ({verdict}); the BC pull opposes the critic's ascent on "
                         f"{fmt_interval(frac.early)} of probes at first and {fmt_interval(frac.late)} late.")
    for k in dynamic_ks(results):
        comparison = dynamic_vs_static(analysis, "conflict_frac", task, k)
        if comparison == "overlap":
            sentences.append(f"At K={k} dynamic and static-routing conflict on overlapping fractions of probes: no "
                             "evidence that routing resolves the conflict.")
        elif comparison == "dynamic lower":
            sentences.append(f"At K={k} dynamic routing conflicts on fewer probes than static-routing (intervals do "
                             "not overlap): re-routing lets a candidate closer to the critic's direction take the "
                             "data point.")
        elif comparison == "dynamic higher":
            sentences.append(f"At K={k} dynamic routing conflicts on more probes than static-routing (intervals do "
                             "not overlap): routing does not resolve the conflict here.")
    return sentences


def question_conflict(results: Results, analysis: Analysis) -> Section:
    blocks: list = [Paragraph(
        "grad_cos is the cosine between the actor-parameter gradients of the BC term and of the critic term on the "
        "probes; grad_norm_ratio compares their sizes (bc_coef included); conflict_frac is the fraction of probes "
        "where the pull towards the data action points against the critic's ascent dQ/da at the winner.")]
    names = ["grad_cos", "grad_norm_ratio", "conflict_frac"]
    for task in results.tasks:
        figure = diagnostic_figure(results, analysis, task, names, f"conflict-{task}",
                                   f"{task}: agreement of the BC and critic terms over training; mean over seeds, "
                                   "bands 95% bootstrap intervals.", {"grad_cos": (0.0, "no agreement (cosine 0)")})
        table = diagnostic_table(results, analysis, task, names, f"{task}: gradient conflict, early -> late")
        blocks += task_blocks(task, conflict_answer(results, analysis, task), figure, table)
    if STATIC not in results.ablations:
        blocks.append(missing("Without static-routing runs there is nothing to tell whether routing resolves the "
                              "conflict.", fill_command(results, ablations=results.ablations + [STATIC])))
    return Section("q3-conflict", "3. Do the critic and BC directions disagree, and does routing resolve it?",
                   tuple(blocks))


# ------------------------------------------------------------------------------------------------
# Question 4: does dynamic routing beat a static assignment?


def improvement_verdict(x: str, y: str, interval: stats.Interval) -> str:
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
                         f"{', '.join(wins) if wins else 'none'} and loses against {', '.join(losses) if losses else 'none'}"
                         "; every other comparison is within noise.")
    return sentences


def question_dynamic_vs_static(results: Results, analysis: Analysis) -> Section:
    blocks: list = []
    if not analysis.groups:
        blocks.append(missing("No run has evaluation scores: there is nothing to aggregate. Runs need evaluations "
                              "(the task must have an evaluator and --eval-interval must be reached).",
                              fill_command(results)))
        return Section("q4-dynamic-vs-static", "4. Does dynamic routing beat a static assignment?", tuple(blocks))
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
    for k in sorted({k for a, k in analysis.groups if a != BASELINE_WITHOUT_K}) or [1]:
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
    return Section("q4-dynamic-vs-static", "4. Does dynamic routing beat a static assignment?", tuple(blocks))


# ------------------------------------------------------------------------------------------------
# Question 5: how sensitive is it to K?


def k_answer(results: Results, analysis: Analysis) -> list[str]:
    sentences = []
    for ablation in results.ablations:
        ks = [k for k in results.ks(ablation) if (ablation, k) in analysis.groups]
        if len(ks) < 2:
            continue
        iqm = {k: analysis.groups[(ablation, k)].aggregates for k in ks}
        best = max(ks, key=lambda k: iqm[k].point[0])
        worse = [k for k in ks if k != best and iqm[k].has_interval and iqm[best].has_interval
                 and iqm[k].high[0] < iqm[best].low[0]]
        text = (f"{ablation}: IQM " + ", ".join(f"K={k} {fmt_interval(iqm[k])}" for k in ks) + f". The best is K={best}")
        text += (f"; it is above K={', '.join(map(str, worse))} (intervals do not overlap)." if worse else
                 "; every other K's interval overlaps it, so these runs do not show a sensitivity to K.")
        dead = [analysis.diagnostics.get(("dead_candidates", t, ablation, max(ks))) for t in results.tasks]
        dead = [d for d in dead if d is not None]
        if dead:
            text += (f" At K={max(ks)}, {fmt_interval(dead[0].late)} candidates own no probe late in training"
                     f" ({results.tasks[0]}).")
        sentences.append(text)
    return sentences


def question_k(results: Results, analysis: Analysis) -> Section:
    blocks: list = []
    blocks += [Paragraph(sentence) for sentence in k_answer(results, analysis)]
    ks_run = sorted({k for a, k in results.groups if a != BASELINE_WITHOUT_K})
    if len(ks_run) < 2:
        wanted = sorted(set(ks_run) | {1, 4, 16})
        blocks.append(missing(f"Only K={seeds_text(ks_run)} was run: a K curve needs at least two values.",
                              fill_command(results, ks=wanted)))
        return Section("q5-k", "5. How sensitive is it to K?", tuple(blocks))
    panels = []
    lines = []
    for ablation in results.ablations:
        ks = [k for k in results.ks(ablation) if (ablation, k) in analysis.groups]
        if ablation == BASELINE_WITHOUT_K or len(ks) < 1:
            continue
        est = [analysis.groups[(ablation, k)].aggregates for k in ks]
        lines.append(Line(ablation, ablation, np.array(ks, float), np.array([e.point[0] for e in est]),
                          np.array([e.low[0] for e in est]), np.array([e.high[0] for e in est])))
    if lines:
        panels.append(Panel("IQM against K", "K (candidates per state)", "IQM of score", tuple(lines), log2_x=True))
    for task in results.tasks:
        for variable in ("load_entropy", "dead_candidates"):
            lines = []
            for ablation in results.ablations:
                pts = [(k, analysis.diagnostics.get((variable, task, ablation, k))) for k in results.ks(ablation)]
                pts = [(k, s) for k, s in pts if s is not None]
                if ablation == BASELINE_WITHOUT_K or not pts:
                    continue
                lines.append(Line(ablation, ablation, np.array([k for k, _ in pts], float),
                                  np.array([s.late.point[0] for _, s in pts]), np.array([s.late.low[0] for _, s in pts]),
                                  np.array([s.late.high[0] for _, s in pts])))
            if lines:
                panels.append(Panel(f"{task}: {DIAGNOSTICS[variable].label} (late)", "K (candidates per state)",
                                    DIAGNOSTICS[variable].unit, tuple(lines), log2_x=True))
    if panels:
        blocks.append(line_figure("k-sensitivity", "Sensitivity to K: IQM of the score over runs and tasks, and the "
                                  "late candidate-usage quantities per task; bands 95% bootstrap intervals.", panels,
                                  columns=3 if len(panels) > 4 else 2))
    return Section("q5-k", "5. How sensitive is it to K?", tuple(blocks))


# ------------------------------------------------------------------------------------------------
# Question 6: error bars; per-task scores; published numbers; inventory


def question_error_bars(results: Results, analysis: Analysis) -> Section:
    table = results.scores
    rows = []
    for task in results.tasks:
        for ablation, k in results.groups:
            part = table[(table.task == task) & (table.ablation == ablation) & (table.k == k)]
            if part.empty:
                continue
            rows.append((task, group_label(ablation, k), str(len(part)), str(int(np.isfinite(part.score).sum())),
                         seeds_text(part[part.diverged].seed.tolist()),
                         seeds_text(part[~part.diverged & ~np.isfinite(part.score)].seed.tolist())))
    diverged = int(table.diverged.sum())
    single = [group_label(a, k) for (a, k), g in analysis.groups.items() if g.matrix.num_runs < 2]
    blocks: list = [Paragraph(
        f"Every number in this report is given with a 95% percentile stratified bootstrap interval "
        f"({analysis.reps} repetitions; numpy's global generator seeded with {analysis.seed} before each "
        "interval, since rliable resamples with it) and the number of seeds behind it. Aggregates resample runs "
        "within each task (rliable's stratified bootstrap); diagnostics resample seeds. Scores follow the published "
        "protocol: the mean of a seed's last three evaluations. "
        + (f"{diverged} seed run(s) diverged (losses became NaN or infinite); they have no score, are left out of "
           "every statistic and are listed below." if diverged else "No seed diverged."))]
    if single:
        blocks.append(Notice("warning", f"Single seed for {', '.join(single)}: a bootstrap over one run repeats the "
                             "same value, so these have no intervals (shown as 'no interval', drawn without bands), "
                             "not zero-width ones. Run more seeds:",
                             fill_command(results, seeds="0-4")))
    if diverged:
        blocks.append(Notice("warning", f"{diverged} seed run(s) diverged and are excluded from the statistics "
                             "(see the table); excluding them flatters the variants they belong to."))
    blocks.append(Table("Seeds behind each run", ("task", "run", "seeds", "scored", "diverged", "not evaluated"),
                        tuple(rows)))
    return Section("q6-error-bars", "6. Error bars: what every interval rests on", tuple(blocks))


def per_task_section(results: Results, analysis: Analysis) -> Section:
    rows = []
    for (task, ablation, k), scores in analysis.per_task.items():
        rows.append((task, group_label(ablation, k), f"{fmt(scores.mean.point[0])} +- {fmt(scores.std)}",
                     fmt_interval(scores.mean), str(len(scores.seeds)), seeds_text(scores.seeds),
                     seeds_text(scores.not_scored)))
    return Section("per-task", "Per-task scores", (Table(
        "Final score per task and run", ("task", "run", "mean +- std", "mean [95% CI]", "n", "seeds",
                                         "no score (diverged / not evaluated)"), tuple(rows),
        note="score: mean of each seed's last 3 evaluations; std over seeds (n-1); interval: bootstrap over seeds."),))


def published_section(results: Results, analysis: Analysis) -> Section:
    rows = []
    for task in results.tasks:
        family = published_family(task)
        if family is None:
            continue
        for ablation, k in results.groups:
            column = published_column(family, ablation, k)
            scores = analysis.per_task.get((task, ablation, k))
            run = results.run(task, ablation, k)
            if column is None or scores is None or run is None:
                continue
            paper = " / ".join(f"{PUBLISHED[family][c][0]:g} +- {PUBLISHED[family][c][1]:g}"
                               for c in column.replace(" and ", ",").split(","))
            rows.append((family, task, group_label(ablation, k), column, paper,
                         f"{100 * scores.mean.point[0]:.0f} +- {100 * scores.std:.0f}" if np.isfinite(scores.std)
                         else f"{100 * scores.mean.point[0]:.0f}",
                         f"{run.steps_done:,} / {PAPER_UPDATES:,}", f"{len(scores.seeds)} / 8"))
    if not rows:
        families = ", ".join(PUBLISHED)
        return Section("published", "Published numbers", (Paragraph(
            "None of these runs is on a task the paper published (OGBench families: " + families + "), so there "
            "is nothing to set beside its table. Run dynamic (K=16 and the family's tuned K) and fql on e.g. "
            "cube-single-play-singletask-task1-v0 with --profile paper to compare."),))
    return Section("published", "Published numbers beside this sweep's", (Table(
        "Success rate (%), the paper's (5 tasks per family, 8 seeds, 1M updates) beside this sweep's (this task)",
        ("family", "task", "run", "paper column", "paper", "this sweep", "updates (this / paper)",
         "seeds (this / paper)"), tuple(rows),
        note="The paper's numbers average 5 tasks; a single task's number can differ from its family's. "
             "A smaller training budget or fewer seeds than the paper's makes differences expected."),))


def inventory_section(results: Results) -> Section:
    rows = [(r.task, r.ablation, str(r.k), seeds_text(r.seeds), f"{r.steps_done:,} / {r.steps_planned:,}",
             str(r.evaluations), r.profile, r.hidden, r.git_commit[:12] + ("-dirty" if r.git_commit.endswith("dirty")
                                                                          else ""))
            for r in results.runs]
    blocks: list = [Table("Runs read", ("task", "ablation", "K", "seeds", "steps (done / planned)", "evaluations",
                                        "profile", "hidden", "git commit"), tuple(rows))]
    unfinished = [f"{r.task} {group_label(r.ablation, r.k)}" for r in results.runs if not r.finished]
    if unfinished:
        blocks.append(Notice("warning", f"Unfinished runs (their scores use the evaluations so far): "
                             f"{', '.join(unfinished)}. Finish them with the same sweep command (it resumes them).",
                             fill_command(results)))
    sweep_file = results.root / "sweep.toml"
    if sweep_file.exists():
        header = [line[len("# command: "):] for line in sweep_file.read_text().splitlines()
                  if line.startswith("# command: ")]
        if header:
            blocks.append(Command("The sweep that produced these runs (recorded in sweep.toml); each run's own "
                                  "`drol-diag run` command is in its config.json", header[0]))
    else:
        for command in dict.fromkeys(r.command for r in results.runs if r.command):
            blocks.append(Command("A run's command (from its config.json)", command))
    return Section("inventory", "Run inventory and commands", tuple(blocks))


def all_sections(results: Results, analysis: Analysis) -> tuple[Section, ...]:
    return (inventory_section(results), question_ownership(results, analysis), question_support(results, analysis),
            question_conflict(results, analysis), question_dynamic_vs_static(results, analysis),
            question_k(results, analysis), question_error_bars(results, analysis), per_task_section(results, analysis),
            published_section(results, analysis))


def summary_lines(results: Results, analysis: Analysis) -> tuple[str, str, str]:
    """Three lines: what was read, the dynamic-vs-static answer, the best run by IQM."""
    seeds = sorted({len(r.seeds) for r in results.runs})
    read = (f"{len(results.runs)} runs: {len(results.tasks)} task(s), ablations {', '.join(results.ablations)}, "
            f"K {seeds_text(sorted({k for a, k in results.groups if a != BASELINE_WITHOUT_K})) or '-'}, "
            f"{'/'.join(map(str, seeds))} seeds each")
    static = [(kx, i) for (x, kx, y, ky), i in analysis.improvement.items() if y == STATIC]
    if static:
        kx, i = max(static, key=lambda item: item[1].point[0])
        versus = f"P(dynamic > static-routing) = {fmt_interval(i)} at K={kx}: {improvement_verdict('dynamic', 'static-routing', i)}"
    else:
        versus = "dynamic vs static-routing: not run (see section 4 for the command)"
    if analysis.groups:
        (a, k), g = max(analysis.groups.items(), key=lambda item: item[1].aggregates.point[0])
        best = f"highest IQM: {group_label(a, k)} {fmt_interval(g.aggregates)}"
    else:
        best = "no evaluation scores in these runs"
    return read, versus, best
