"""Question 5b, only for a sweep with a hyper-parameter grid (`drol-diag sweep --grid bc_coef=0.3,1,3`): how
sensitive is each variant to each swept setting, and does dynamic beat static routing at matched settings? Each
grid point is its own ablation label (reports.runs: "dynamic bc_coef=0.3"), so its statistics are the others'."""

from __future__ import annotations

from typing import Any

from reports import stats
from reports.analysis import REFERENCE_ABLATION, Analysis, GroupScores, compare
from reports.document import Block, Paragraph, Section, Table
from reports.figures import Panel, interval_line, line_figure
from reports.questions.common import STATIC, groups_of, matched, score_levels
from reports.runs import Results
from reports.text import effect_text, fmt_interval, group_label

ANCHOR, TITLE = "q5b-grid", "5b. How sensitive is it to the swept hyper-parameters?"

# (ablation, K, the other swept settings' values) -> [(value of the setting, its group's scores)], by value
Curves = dict[tuple[str, int, tuple[tuple[str, Any], ...]], list[tuple[Any, GroupScores]]]


def setting_curves(results: Results, analysis: Analysis, name: str) -> Curves:
    """The IQM of every scored group at each value of setting `name`, one curve per (ablation, K, other settings)."""
    curves: Curves = {}
    for (label, k), group in analysis.groups.items():
        point = results.grid.get(label)
        values = dict(point.settings) if point else {}
        if name not in values:
            continue
        others = tuple((other, value) for other, value in point.settings if other != name)
        curves.setdefault((point.ablation, k, others), []).append((values[name], group))
    return {key: sorted(points, key=lambda p: p[0]) for key, points in curves.items()}


def curve_label(ablation: str, k: int, others: tuple[tuple[str, Any], ...]) -> str:
    """'dynamic K=2', or 'dynamic K=2 lr=0.0001' where other settings were swept too."""
    return " ".join([group_label(ablation, k), *(f"{name}={value}" for name, value in others)])


def sensitivity_text(results: Results, analysis: Analysis, name: str, curves: Curves) -> list[str]:
    """Per curve: the IQM at each value, and the best value against the worst, their IQM difference read by the
    three verdicts (both over the tasks both values ran)."""
    sentences = []
    for (ablation, k, others), points in curves.items():
        label = curve_label(ablation, k, others)
        text = f"{label}: IQM " + ", ".join(f"{name}={value} {fmt_interval(g.aggregates)}" for value, g in points) + "."
        if len(points) > 1:
            best = max(points, key=lambda p: p[1].aggregates.point[0])
            worst = min(points, key=lambda p: p[1].aggregates.point[0])
            compared = compare(results, analysis, best[1].matrix.ablation, best[1].matrix.k,
                               worst[1].matrix.ablation, worst[1].matrix.k)
            text += f" Highest at {name}={best[0]}, lowest at {name}={worst[0]}"
            text += (f"; IQM {effect_text(compared[1], stats.SCORE_MATERIAL)}." if compared else
                     ": no task both ran.")
        else:
            text += f" One value of {name} only: no curve."
        sentences.append(text)
    return sentences


def sensitivity_panel(results: Results, analysis: Analysis, name: str, curves: Curves) -> Panel | None:
    """The IQM against the setting's values (numbers only; None for a text setting)."""
    lines = []
    for (ablation, k, others), points in curves.items():
        values = [value for value, _ in points]
        if not all(isinstance(v, (int, float)) for v in values):
            return None
        label = curve_label(ablation, k, others)
        lines.append(interval_line(label, ablation, values, [g.aggregates for _, g in points], key=label))
    values = [float(v) for line in lines for v in line.x]
    logarithmic = min(values) > 0 and max(values) >= 4 * min(values)  # (0.3, 1, 3; 1e-4, 3e-4: a log axis)
    return Panel(f"IQM against {name}", name + (" (log scale)" if logarithmic else ""), "IQM of score", tuple(lines),
                 log2_x=logarithmic, levels=score_levels(results, analysis))


def matched_rows(results: Results, analysis: Analysis) -> list[tuple[str, ...]]:
    """P(dynamic > static-routing), both IQMs and their difference with its verdict at each grid point where both
    ran (same settings and K), over the tasks both ran there."""
    rows = []
    for (x, kx, y, ky), interval in analysis.improvement.items():
        if results.point(y).ablation != STATIC or x not in results.grid:
            continue
        settings = ", ".join(f"{name}={value}" for name, value in results.grid[x].settings) or "-"
        matched_set, difference = analysis.matched[(x, kx, y, ky)], analysis.score_difference[(x, kx, y, ky)]
        rows.append((settings, f"K={kx}", fmt_interval(matched_set.iqm_x), fmt_interval(matched_set.iqm_y),
                     fmt_interval(interval), fmt_interval(difference),
                     stats.verdict(difference, stats.SCORE_MATERIAL)))
    return rows


def question_grid(results: Results, analysis: Analysis) -> Section:
    blocks: list[Block] = []
    panels = []
    for name in dict.fromkeys(setting for point in results.grid.values() for setting, _ in point.settings):
        curves = setting_curves(results, analysis, name)
        blocks += [Paragraph(sentence) for sentence in sensitivity_text(results, analysis, name, curves)]
        blocks.append(Table(f"IQM of the score at each {name}", ("run", name, "IQM [95% CI]", "seeds x tasks"),
                            tuple((curve_label(a, k, others), str(value), fmt_interval(g.aggregates),
                                   f"{g.matrix.num_runs} x {len(g.matrix.tasks)}")
                                  for (a, k, others), points in curves.items() for value, g in points),
                            note="IQM over runs x tasks, 95% stratified bootstrap intervals (rliable); one row per "
                                 "value of the setting, the other swept settings held at the values named."))
        panel = sensitivity_panel(results, analysis, name, curves) if curves else None
        if panel is not None:
            panels.append(panel)
    if panels:
        blocks.append(line_figure("grid-sensitivity", "Sensitivity to each swept setting: IQM of the score over runs "
                                  "and tasks against the setting's value, per ablation and K (grey lines: the "
                                  "task's reference policies, where it has them); bands 95% bootstrap intervals.",
                                  panels, columns=2))
    rows = matched_rows(results, analysis)
    if rows:
        blocks.append(Table("Dynamic vs static routing at matched settings",
                            ("settings", "K", "IQM dynamic", "IQM static-routing", "P(dynamic > static) [95% CI]",
                             "IQM difference [95% CI]", "verdict"), tuple(rows),
                            note="each row compares runs of dynamic and static-routing made with the same swept "
                                 "settings and K, over the tasks both ran; P(X > Y) and the verdicts as in "
                                 "section 4."))
    elif any((matched(results, label, STATIC), k) in results.groups
             for label, k in groups_of(results, REFERENCE_ABLATION)):
        blocks.append(Paragraph("Dynamic and static-routing ran at matched settings and K, but no such pair has "
                                "evaluation scores on a common task: they are not compared here."))
    else:
        blocks.append(Paragraph("No grid point has both dynamic and static-routing runs: dynamic and static routing "
                                "are not compared at matched settings (add both to --ablations)."))
    return Section(ANCHOR, TITLE, tuple(blocks))
