"""Question 5: how sensitive is it to K? The IQM at each K against the highest, the candidates that own no probe,
the late candidate-usage quantities against K, and the regret split (does some candidate reach the oracle's
action, and does the deployed sample reach the best candidate?); with one K only, the sweep command that adds more,
in place of the figure and the split."""

from __future__ import annotations

from reports import stats
from reports.analysis import DIAGNOSTICS, Analysis, compare, is_baseline
from reports.document import Block, Paragraph, Section
from reports.figures import Panel, interval_line, line_figure
from reports.questions.common import diagnostic_panel, get, score_levels
from reports.questions.truth import direction
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


def regret_split_answer(results: Results, analysis: Analysis) -> list[str]:
    """Per task, late, per routed run and K: the oracle's lead over the deployed action as regret_no_candidate +
    regret_sampling, and the first term's change from the smallest K to the largest; where the task has no truth,
    the critic's view of the second (q_regret_sampling)."""
    sentences = []
    for task in results.tasks:
        truth, critic = [], []
        for ablation in (a for a in results.ablations if not is_baseline(a)):
            split = [(k, no_candidate, sampling) for k in results.ks(ablation)
                     if (no_candidate := get(analysis, "regret_no_candidate", task, ablation, k))
                     and (sampling := get(analysis, "regret_sampling", task, ablation, k))]
            q_views = [(k, s) for k in results.ks(ablation) if (s := get(analysis, "q_regret_sampling", task,
                                                                         ablation, k))]
            if split:
                truth.append(f"{ablation} " + "; ".join(f"K={k} {fmt_interval(n.late)} + {fmt_interval(s.late)}"
                                                        for k, n, s in split) + shrink_text(analysis, split))
            elif q_views:
                critic.append(f"{ablation} " + "; ".join(f"K={k} {fmt_interval(s.late)}" for k, s in q_views))
        if truth:
            sentences.append(f"{task}, late: the oracle's lead over the deployed action = no candidate reaches it "
                             "(true_value_oracle - true_value_best_candidate) + the deployed sample falls short of the "
                             "best candidate (true_value_best_candidate - true_value_deployed): "
                             + ". ".join(truth) + ".")
        elif critic:
            sentences.append(f"{task}, late, no ground truth logged: the critic's view only (its Q, not the true "
                             "value) of how far the deployed sample falls short of the best of the K candidates, "
                             "q_best_candidate - q_deployed: " + ". ".join(critic) + ".")
    return sentences


def shrink_text(analysis: Analysis, split: list) -> str:
    """'; the first term at K=16 minus at K=2: <interval> (<reading>)' for two K or more, else ''."""
    if len(split) < 2:
        return ""
    (low_k, low, _), (high_k, high, _) = split[0], split[-1]
    shrink = stats.difference_interval(high.late_values, low.late_values, analysis.reps, analysis.seed)
    reading = (f"no reading with {plural(shrink.runs, 'seed')}" if shrink.runs < stats.MIN_RUNS else
               direction(shrink, "it grows with K, against the claim that K candidates cover the rare good actions",
                         "it shrinks as K grows, as the claim that K candidates cover the rare good actions predicts"))
    return f"; the first term at K={high_k} minus at K={low_k}: {fmt_interval(shrink)} ({reading})"


def question_k(results: Results, analysis: Analysis) -> Section:
    blocks: list[Block] = []
    blocks += [Paragraph(sentence) for sentence in k_answer(results, analysis)]
    ks_run = run_ks(results.groups)
    if len(ks_run) < 2:
        wanted = sorted(set(ks_run) | {1, 4, 16})
        blocks.append(missing(f"Only K={seeds_text(ks_run)} was run: a K curve needs at least two values.",
                              fill_command(results, ks=wanted)))
        return Section(ANCHOR, TITLE, tuple(blocks))
    blocks += [Paragraph(sentence) for sentence in regret_split_answer(results, analysis)]
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
