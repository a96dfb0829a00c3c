"""Verdicts a referee cannot fault (issue 21): three verdicts (material, negligible, inconclusive) wherever a
difference is read, no verdict below stats.MIN_RUNS seeds, a headline that counts every comparison, comparisons
over the tasks both sides ran, a yardstick for every score, and "undertrained" only for a curve still rising.

The folders here are built in memory (reports.runs.Results of chosen per-seed scores and evaluation curves), so
each property is checked on numbers chosen to exercise it, without training.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from drol_diag.tasks.base import undertrained_level
from drol_diag.tasks.registry import synthetic_reference_levels
from reports import stats
from reports.analysis import analyse, analysis_json
from reports.questions.common import below_reference, calibration_caveat, no_yardstick_notice, yardstick_sentence
from reports.questions.conflict import conflict_answer
from reports.questions.dynamic_vs_static import improvement_answer, question_dynamic_vs_static
from reports.questions.k_sensitivity import k_answer
from reports.questions.support import support_answer
from reports.runs import SCORE_COLUMNS, Results, RunInfo
from reports.sections import all_sections, per_task_section, published_section, summary_lines, verdict_rows
from reports.text import effect_text, fmt_interval
from tests.helpers import check_sentences

REPS = 200
USER_TASK = "my-task"  # a task with no reference levels (not an embedded one)


def synthetic_results(curves: dict[tuple[str, str, int], np.ndarray], root: Path = Path("/tmp/synthetic"),
                      action_dim: int = 2, steps_per_eval: int = 100) -> Results:
    """A results folder in memory: `curves` maps (task, ablation, K) to evaluation scores (seeds, evaluations), the
    score of a seed the mean of its last three (the published protocol)."""
    tasks = sorted({t for t, _, _ in curves})
    ablations = list(dict.fromkeys(a for _, a, _ in curves))
    ks = sorted({k for _, _, k in curves})
    seeds = max(c.shape[0] for c in curves.values())
    evals = max(c.shape[1] for c in curves.values())
    values = np.full((len(tasks), len(ablations), len(ks), seeds, evals), np.nan)
    rows, runs = [], []
    for (task, ablation, k), curve in curves.items():
        where = tasks.index(task), ablations.index(ablation), ks.index(k)
        values[where][:curve.shape[0], :curve.shape[1]] = curve
        for seed in range(curve.shape[0]):
            rows.append((task, ablation, k, seed, float(curve[seed, -3:].mean()), False, curve.shape[1],
                         100 * curve.shape[1], 0))
        runs.append(RunInfo(task=task, ablation=ablation, k=k, seeds=tuple(range(curve.shape[0])),
                            steps_planned=steps_per_eval * evals, steps_done=steps_per_eval * evals,
                            eval_interval=steps_per_eval, evaluations=evals, profile="auto", hidden="64,64",
                            transitions=1000, action_dim=action_dim, reference_levels=synthetic_reference_levels(task),
                            behaviour_level=(undertrained_level(synthetic_reference_levels(task)) or (None,))[0],
                            git_commit="0" * 40,
                            command="", run_dir=str(root / task / f"{ablation}-k{k}"),
                            sweep_options=("--steps", str(100 * evals))))
    logs = xr.Dataset({"eval_score": (("task", "ablation", "k", "seed", "eval_step"), values),
                       "q_data": (("task", "ablation", "k", "seed", "step"),  # a training metric, as every run logs
                                  np.zeros((len(tasks), len(ablations), len(ks), seeds, evals)))},
                      coords={"task": tasks, "ablation": ablations, "k": ks, "seed": np.arange(seeds),
                              "eval_step": 100 * np.arange(1, evals + 1), "step": 100 * np.arange(1, evals + 1)})
    scores = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    return Results(root=root, logs=logs, runs=tuple(runs), scores=scores)


def flat(level: float, seeds: int, evals: int = 6, spread: float = 0.02, seed: int = 0) -> np.ndarray:
    """Scores that stay at `level` (seed to seed noise `spread`): a plateaued run."""
    rng = np.random.default_rng(seed)
    return np.clip(level + spread * rng.standard_normal((seeds, 1)) + 0.002 * rng.standard_normal((seeds, evals)),
                   0, 1)


def rising(end: float, seeds: int, evals: int = 6, seed: int = 0) -> np.ndarray:
    """Scores that climb linearly to `end` over the evaluations: still rising at the end."""
    rng = np.random.default_rng(seed)
    return np.linspace(0.0, end, evals)[None] + 0.005 * rng.standard_normal((seeds, evals))


def test_the_three_verdicts_and_the_seeds_rule():
    interval = lambda low, high, runs=8: stats.Interval(np.array([(low + high) / 2]), np.array([low]),
                                                        np.array([high]), runs)
    assert stats.verdict(interval(0.06, 0.2), 0.05) == stats.MATERIAL
    assert stats.verdict(interval(-0.2, -0.06), 0.05) == stats.MATERIAL
    assert stats.verdict(interval(-0.04, 0.04), 0.05) == stats.NEGLIGIBLE
    # the examples, once read as "no material difference": an estimate 2.5 times the threshold, an interval
    # reaching from beyond the threshold to zero, and one that excludes 0 but not the threshold
    assert stats.verdict(interval(-0.208, -0.0439), 0.05) == stats.INCONCLUSIVE
    assert stats.verdict(interval(-0.73, 0.0241), 0.05) == stats.INCONCLUSIVE
    assert stats.verdict(interval(0.0258, 0.136), 0.05) == stats.INCONCLUSIVE
    assert stats.verdict(interval(0.45, 0.58), 0.1, null=0.5) == stats.NEGLIGIBLE  # against 0.5, not 0
    assert stats.verdict(interval(0.06, 0.2, runs=4), 0.05) == stats.TOO_FEW  # clear, but 4 seeds
    assert stats.verdict(interval(0.06, 0.2), None) == stats.NOT_JUDGED
    # inconclusive says what would settle it: the seeds at which the same spread would clear the threshold
    text = effect_text(interval(-0.208, -0.0439), 0.05)
    needed = int(re.search(r"about (\d+) seeds per side", text)[1])
    half, room = (0.208 - 0.0439) / 2, abs((-0.208 - 0.0439) / 2) - 0.05
    assert needed == int(np.ceil(8 * (half / room) ** 2)) and needed > 8
    assert check_sentences([text]) == 1
    # two seeds: the number, no interval, no verdict (a bootstrap over 2 runs can return [1, 1])
    few = stats.Interval(np.array([0.969]), np.array([0.969]), np.array([0.969]), 2)
    assert fmt_interval(few) == "0.969 (n=2)"
    assert "no verdict with 2 seeds" in effect_text(few, 0.05) and "material" not in effect_text(few, 0.05)


def test_two_seeds_give_numbers_not_verdicts():
    """With 2 seeds a side, dynamic clearly higher: P(dynamic > static) = 1 [1, 1], yet no "beats"."""
    results = synthetic_results({("arc-2d", "dynamic", 4): flat(0.6, 2), ("arc-2d", "static-routing", 4):
                                 flat(0.3, 2, seed=1)})
    analysis = analyse(results, reps=REPS)
    sentences = improvement_answer(results, analysis)
    assert "beats" not in " ".join(sentences) and "no verdict" in sentences[0]
    assert "[1, 1]" not in sentences[0] and "(n=2)" in sentences[0]
    assert [r.verdict for r in verdict_rows(results, analysis)] == [stats.TOO_FEW]
    check_sentences(sentences + list(summary_lines(results, analysis)))


def test_comparisons_use_the_tasks_both_sides_ran():
    """dynamic on 3 tasks, static-routing on 1: the comparison, both IQMs and their difference are over that task
    alone, and the sentence names it and the 2 tasks left out (the aggregate table keeps dynamic's 3)."""
    curves = {("arc-2d", "dynamic", 4): flat(0.30, 6), ("cliff-2d", "dynamic", 4): flat(0.90, 6, seed=2),
              ("modes-2d", "dynamic", 4): flat(0.80, 6, seed=3), ("arc-2d", "static-routing", 4): flat(0.25, 6, 6, 0.02, 4)}
    results = synthetic_results(curves)
    analysis = analyse(results, reps=REPS)
    key = ("dynamic", 4, "static-routing", 4)
    matched = analysis.matched[key]
    assert matched.tasks == ("arc-2d",) and matched.left_out == ("cliff-2d", "modes-2d")
    dynamic_on_arc = results.scores.query("task == 'arc-2d' and ablation == 'dynamic'").score.to_numpy()
    static_on_arc = results.scores.query("ablation == 'static-routing'").score.to_numpy()
    iqm = lambda x: float(stats.iqm_batched(x[None, :, None])[0, 0])
    assert matched.iqm_x.point[0] == pytest.approx(iqm(dynamic_on_arc))
    assert analysis.score_difference[key].point[0] == pytest.approx(iqm(dynamic_on_arc) - iqm(static_on_arc))
    assert analysis.groups[("dynamic", 4)].aggregates.point[0] > matched.iqm_x.point[0] + 0.2  # all 3 tasks
    sentence = improvement_answer(results, analysis)[0]
    assert "over the 1 task both ran (arc-2d); 2 tasks only one side ran left out (cliff-2d, modes-2d)" in sentence
    assert f"IQM {fmt_interval(matched.iqm_x)} vs {fmt_interval(matched.iqm_y)}" in sentence
    # K curves too: K=2 on one task only is compared with the best K over that task, not skipped
    curves[("arc-2d", "dynamic", 2)] = flat(0.30, 6, seed=5)
    results = synthetic_results(curves)
    k_text = " ".join(k_answer(results, analyse(results, reps=REPS)))
    assert "K=2 difference" in k_text and "over the tasks both ran" in k_text
    check_sentences([sentence, k_text])


def test_a_comparison_over_several_tasks_is_also_read_task_by_task():
    """dynamic beats static-routing on arc-2d, loses on cliff-2d, ties on modes-2d: over the 3 tasks the aggregate
    blurs it; the task-by-task table gives each task's IQM difference over its own seeds, with its own verdict, and
    report.json holds the same under the comparison."""
    curves = {("arc-2d", "dynamic", 4): flat(0.60, 8), ("arc-2d", "static-routing", 4): flat(0.30, 8, seed=1),
              ("cliff-2d", "dynamic", 4): flat(0.30, 8, seed=2), ("cliff-2d", "static-routing", 4): flat(0.70, 8, seed=3),
              ("modes-2d", "dynamic", 4): flat(0.50, 8, spread=0.005, seed=4),
              ("modes-2d", "static-routing", 4): flat(0.50, 8, spread=0.005, seed=5)}
    results = synthetic_results(curves)
    analysis = analyse(results, reps=REPS)
    key = ("dynamic", 4, "static-routing", 4)
    iqm = lambda x: float(stats.iqm_batched(x[None, :, None])[0, 0])
    scores = lambda task, ablation: results.scores.query(f"task == '{task}' and ablation == '{ablation}'").score
    verdicts = {}
    for task in ("arc-2d", "cliff-2d", "modes-2d"):
        difference = analysis.task_difference[(task, *key)]
        assert difference.point[0] == pytest.approx(iqm(scores(task, "dynamic").to_numpy())
                                                    - iqm(scores(task, "static-routing").to_numpy()))
        verdicts[task] = stats.verdict(difference, stats.SCORE_MATERIAL)
    assert verdicts == {"arc-2d": stats.MATERIAL, "cliff-2d": stats.MATERIAL, "modes-2d": stats.NEGLIGIBLE}
    assert analysis.task_difference[("cliff-2d", *key)].high[0] < 0
    (table,) = [b for b in question_dynamic_vs_static(results, analysis).blocks
                if getattr(b, "caption", "") == "IQM difference task by task"]
    assert [(row[0], row[-1]) for row in table.rows] == list(verdicts.items())
    written = analysis_json(analysis, results)["iqm_difference"]["dynamic-static-routing"]["4"]["per_task"]
    assert {task: entry["verdict"] for task, entry in written.items()} == verdicts
    # one task: the aggregate is that task's, and no task-by-task table repeats it
    one = synthetic_results({k: v for k, v in curves.items() if k[0] == "arc-2d"})
    assert not analyse(one, reps=REPS).task_difference


def test_the_headline_counts_every_comparison():
    """Six dynamic-vs-static comparisons (3 K): the summary line counts the verdicts of all, not the best one."""
    curves = {}
    for i, (k, dynamic, static) in enumerate([(2, 0.7, 0.4), (4, 0.3, 0.6), (8, 0.5, 0.5)]):
        curves[("arc-2d", "dynamic", k)] = flat(dynamic, 6, seed=i)
        curves[("arc-2d", "static-routing", k)] = flat(static, 6, seed=10 + i)
    results = synthetic_results(curves)
    analysis = analyse(results, reps=REPS)
    readings = [stats.verdict(analysis.score_difference[("dynamic", k, "static-routing", k)], stats.SCORE_MATERIAL)
                for k in (2, 4, 8)]
    assert readings == [stats.MATERIAL, stats.MATERIAL, stats.NEGLIGIBLE]
    versus = summary_lines(results, analysis)[1]
    assert versus.startswith("dynamic vs static-routing, 3 comparisons")
    assert ("dynamic materially higher in 1, static-routing materially higher in 1, negligible in 1, "
            "inconclusive in 0") in versus
    assert "a lone material one can arise by chance" in versus and "beats" not in versus
    check_sentences(improvement_answer(results, analysis) + [versus])


def test_every_score_has_a_yardstick():
    """A task without reference levels: a notice with the command that adds bc-only; with a bc-only run, each score
    is read against it (both variants far below the data's behaviour, whichever wins)."""
    curves = {(USER_TASK, "dynamic", 4): flat(0.2, 6), (USER_TASK, "static-routing", 4): flat(0.1, 6, seed=1)}
    results = synthetic_results(curves)
    analysis = analyse(results, reps=REPS)
    notice = no_yardstick_notice(results, analysis)
    assert notice is not None and USER_TASK in notice.text and "--ablations dynamic,static-routing,bc-only" in \
        notice.command
    assert yardstick_sentence(results, analysis, USER_TASK, list(results.groups)) is None
    curves[(USER_TASK, "bc-only", 4)] = flat(0.8, 6, seed=2)
    results = synthetic_results(curves)
    analysis = analyse(results, reps=REPS)
    assert no_yardstick_notice(results, analysis) is None
    sentence = yardstick_sentence(results, analysis, USER_TASK, list(results.groups))
    assert re.match(rf"Beside the best reference on {USER_TASK}, bc-only K=4 \(0\.[78]\d*\): dynamic K=4", sentence)
    assert sentence.count("below it") == 2
    check_sentences([sentence])


def test_undertrained_only_while_still_rising():
    """Below the task's random behaviour action: a run still climbing is undertrained, a flat one plateaued below."""
    results = synthetic_results({("arc-2d", "dynamic", 4): rising(0.45, 6), ("arc-2d", "static-routing", 4):
                                 flat(0.3, 6, seed=1)})
    analysis = analyse(results, reps=REPS)
    states = {label: state for label, _, state in below_reference(results, analysis)["arc-2d"]}
    assert states == {"dynamic K=4": "still rising", "static-routing K=4": "plateaued"}
    best = summary_lines(results, analysis)[2]
    assert "arc-2d: undertrained, still rising" in best


def test_a_run_on_a_published_family_is_set_beside_the_papers_number():
    """dynamic at K 8 (the paper has 16 and the tuned K) and fql on a cube-single singletask: each beside the
    nearest published column, with every way the run differs from the published setting."""
    task = "cube-single-play-singletask-task2-v0"
    results = synthetic_results({(task, "dynamic", 8): flat(0.5, 3), (task, "fql", 1): flat(0.4, 3, seed=1),
                                 (task, "static-routing", 8): flat(0.3, 3, seed=2)}, steps_per_eval=5000)
    section = published_section(results, analyse(results, reps=REPS))
    rows = {row[1]: row for row in section.blocks[0].rows}
    assert set(rows) == {"dynamic K=8", "fql"}  # static-routing has no published column
    assert rows["dynamic K=8"][2] == "DROL*: 98 +- 2" and rows["fql"][2] == "FQL: 96 +- 1"
    assert rows["dynamic K=8"][4] == ("updates 30,000 / 1,000,000; networks 64,64 / 512,512,512,512; K 8 / 16; "
                                      "dataset 1,000 / 1,000,000 transitions; seeds 3 / 8")
    assert "K 8" not in rows["fql"][4]
    # a task outside the published families: no section, one line under the per-task scores
    results = synthetic_results({("arc-2d", "dynamic", 4): flat(0.5, 3)})
    analysis = analyse(results, reps=REPS)
    assert published_section(results, analysis) is None
    assert "None of these runs is a dynamic or fql run on a family the paper published" in \
        per_task_section(results, analysis).blocks[1].text


def test_readings_say_where_the_estimate_they_read_is_outside_its_bar():
    """On a 5-action-dimension task without truth, the support and conflict answers carry the settle study's
    finding for ood_frac, support_dist and conflict_frac in the same section; in 2 dimensions, none."""
    curves = {(USER_TASK, "dynamic", 4): flat(0.5, 5)}
    for dims, expected in ((5, True), (2, False)):
        results = synthetic_results(curves, action_dim=dims)
        analysis = analyse(results, reps=REPS)
        support = " ".join(support_answer(results, analysis, USER_TASK, None))
        conflict = " ".join(conflict_answer(results, analysis, USER_TASK))
        assert ("Caution: my-task has 5 action dimensions and no truth to check ood_frac against" in support) is expected
        assert ("read it as a lower bound on the share truly out of support" in support) is expected
        assert ("no truth to check conflict_frac against" in conflict) is expected
        assert calibration_caveat(results, analysis, USER_TASK, "q_gap") is None  # no finding for it


def test_the_summary_of_verdicts_leads_and_lists_every_headline_difference():
    curves = {("arc-2d", "dynamic", 2): flat(0.7, 6), ("arc-2d", "static-routing", 2): flat(0.4, 6, seed=1),
              ("arc-2d", "dynamic", 4): flat(0.6, 6, seed=2), ("arc-2d", "static-routing", 4): flat(0.6, 6, seed=3)}
    results = synthetic_results(curves)
    analysis = analyse(results, reps=REPS)
    rows = verdict_rows(results, analysis)
    sections = all_sections(results, analysis, rows)
    assert sections[0].anchor == "verdicts" and sections[1].anchor == "inventory"
    table = sections[0].blocks[1]
    assert table.columns == ("question", "comparison", "verdict", "difference [95% CI]", "threshold", "seeds")
    assert [(r[0], r[2]) for r in table.rows] == [("4. dynamic vs static", "material"),
                                                   ("4. dynamic vs static", "negligible"),
                                                   ("5. sensitivity to K", "material"),  # dynamic: K=4 below K=2
                                                   ("5. sensitivity to K", "material")]  # static: K=2 below K=4
    assert sections[0].blocks[0].text.startswith("4 differences read: 3 material, 1 negligible.")

