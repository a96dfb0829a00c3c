"""Question 5: how sensitive is it to K? The IQM at each K against the highest, the candidates that own no probe,
and the late candidate-usage quantities against K; with one K only, the sweep command that adds more."""

from __future__ import annotations

from reports import stats
from reports.analysis import DIAGNOSTICS, Analysis, compare, is_baseline
from reports.document import Block, Paragraph, Section
from reports.figures import Panel, interval_line, line_figure
from reports.questions.common import diagnostic_panel, get, score_levels
from reports.runs import Results
from reports.text import effect_text, fill_command, fmt_interval, missing, plural, run_ks, seeds_text

ANCHOR, TITLE = "q5-k", "5. How sensitive is it to K?"


def scored_ks(results: Results, analysis: Analysis, ablation: str) -> list[int]:
    """The K values an ablation was run at that have evaluation scores."""
    return [k for k in results.ks(ablation) if (ablation, k) in analysis.groups]


def k_effects(results: Results, analysis: Analysis,
              ablation: str) -> tuple[list[int], int, dict[int, stats.Interval]] | None:
    """An ablation's scored K values, the one with the highest IQM, and IQM(K) - IQM(highest) per other K over
    the tasks both ran (the verdict summary reads the same); None with fewer than two K values."""
    ks = scored_ks(results, analysis, ablation)
    if len(ks) < 2:
        return None
    best = max(ks, key=lambda k: analysis.groups[(ablation, k)].aggregates.point[0])
    return ks, best, {k: compared[1] for k in ks if k != best
                      and (compared := compare(results, analysis, ablation, k, ablation, best))}


def k_answer(results: Results, analysis: Analysis) -> list[str]:
    sentences = []
    for ablation in results.ablations:
        if (effected := k_effects(results, analysis, ablation)) is None:
            continue
        ks, best, effects = effected
        readings = {k: stats.verdict(d, stats.SCORE_MATERIAL) for k, d in effects.items()}
        text = (f"{ablation}: IQM " + ", ".join(f"K={k} {fmt_interval(analysis.groups[(ablation, k)].aggregates)}"
                                                for k in ks)
                + f". The highest is at K={best}; IQM of each other K minus K={best}, over the tasks both ran: "
                + "; ".join(f"K={k} {effect_text(d, stats.SCORE_MATERIAL)}" for k, d in effects.items()) + ". ")
        by_reading = {r: [k for k, v in readings.items() if v == r] for r in dict.fromkeys(readings.values())}
        if by_reading.get(stats.MATERIAL):
            below = ", ".join(map(str, by_reading[stats.MATERIAL]))
            text += f"So these runs show a material sensitivity to K (K={below} below K={best})"
        elif readings and set(readings.values()) == {stats.NEGLIGIBLE}:
            text += f"So these runs show the score insensitive to K within +-{stats.SCORE_MATERIAL:g}"
        elif stats.INCONCLUSIVE in readings.values():
            text += "So these runs cannot tell how sensitive the score is to K"
        else:
            text += f"No verdict on K: fewer than {stats.MIN_RUNS} seeds per K"
        text += (" (" + ", ".join(f"{r} at K={', '.join(map(str, v))}" for r, v in by_reading.items()) + ")."
                 if len(by_reading) > 1 else ".")
        for task in results.tasks:
            dead = get(analysis, "dead_candidates", task, ablation, max(ks))
            if dead is None:
                continue
            if dead.late_values.size and dead.late_values.max() == 0:
                text += (f" At K={max(ks)} every candidate owns at least one probe late in training ({task}: no "
                         f"dead candidate in any seed; {plural(len(dead.seeds), 'seed')}).")
            else:
                text += (f" At K={max(ks)}, {fmt_interval(dead.late)} candidates own no probe late in training"
                         f" ({task}).")
        sentences.append(text)
    return sentences


def question_k(results: Results, analysis: Analysis) -> Section:
    blocks: list[Block] = []
    blocks += [Paragraph(sentence) for sentence in k_answer(results, analysis)]
    ks_run = run_ks(results.groups)
    if len(ks_run) < 2:
        wanted = sorted(set(ks_run) | {1, 4, 16})
        blocks.append(missing(f"Only K={seeds_text(ks_run)} was run: a K curve needs at least two values.",
                              fill_command(results, ks=wanted)))
        return Section(ANCHOR, TITLE, tuple(blocks))
    panels = k_panels(results, analysis)
    if panels:
        blocks.append(line_figure("k-sensitivity", "Sensitivity to K: IQM of the score over runs and tasks (grey "
                                  "lines: the task's reference policies, where it has them), and the late "
                                  "candidate-usage quantities per task; bands 95% bootstrap intervals. Each "
                                  "quantity's axis spans at least twice its materiality threshold.", panels,
                                  columns=3 if len(panels) > 4 else 2))
    return Section(ANCHOR, TITLE, tuple(blocks))


def k_panels(results: Results, analysis: Analysis) -> list[Panel]:
    """The IQM against K per ablation (with the reference levels), then per task the late load entropy and
    dead candidates against K."""
    panels = []
    lines = []
    for ablation in results.ablations:
        ks = scored_ks(results, analysis, ablation)
        if is_baseline(ablation) or len(ks) < 1:
            continue
        lines.append(interval_line(ablation, results.point(ablation).ablation, ks,
                                   [analysis.groups[(ablation, k)].aggregates for k in ks], key=ablation))
    if lines:
        panels.append(Panel("IQM against K", "K (candidates per state)", "IQM of score", tuple(lines), log2_x=True,
                            levels=score_levels(results, analysis)))
    for task in results.tasks:
        for variable in ("load_entropy", "dead_candidates"):
            lines = []
            for ablation in results.ablations:
                pts = [(k, get(analysis, variable, task, ablation, k)) for k in results.ks(ablation)]
                pts = [(k, s) for k, s in pts if s is not None]
                if is_baseline(ablation) or not pts:
                    continue
                lines.append(interval_line(ablation, results.point(ablation).ablation, [k for k, _ in pts],
                                           [s.late for _, s in pts], key=ablation))
            if lines:
                panels.append(diagnostic_panel(variable, f"{task}: {DIAGNOSTICS[variable].label} (late)",
                                               "K (candidates per state)", tuple(lines), log2_x=True))
    return panels
