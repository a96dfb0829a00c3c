"""The report's text and figures do not mislead (issue 13): no verdict from too few log intervals, aggregates that
coincide by construction said so, the task's reference levels beside the scores (and runs below a random supported
mode called undertrained), differences stated as effect sizes against documented thresholds and never given a
cause, axes and labels that stay in range and on the page, tables that wrap, and paths in any script in the PDF;
and (issue 14) on a task with ground truth, each diagnostic estimate beside its truth.

Most checks read the analysis and the sections of the session's small sweep (read only, never written) or
synthetic diagnostic summaries put in its place; one figure of each kind is drawn, one page opened in Chromium and
one PDF rendered.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy.stats import spearmanr

from diagnostics.quantities import CALIBRATIONS, REPORTING, materiality_table, reported
from drol_diag.tasks.base import UNDERTRAINED_REFERENCE, Task
from drol_diag.tasks.modes import MODES_TASKS, ModesGeometry, modes_evaluator, modes_task
from reports import stats
from reports.analysis import analyse, diagnostic_summary, run_calibrations, run_diagnostics
from reports.document import Command, Figure, Notice, Paragraph, Report, Section, Table
from reports.figures import IntervalRow, Line, Panel, draw_interval_figure, draw_line_figure
from reports.html import render_html
from reports.pdf import render_pdf
from reports.questions.common import get
from reports.questions.conflict import conflict_answer
from reports.questions.critic import ONE_STEP, critic_answer, critic_sentences, one_step_task
from reports.questions.dynamic_vs_static import aggregates_table, question_dynamic_vs_static, score_panels
from reports.questions.k_sensitivity import k_answer, k_panels, question_k, regret_split_answer
from reports.questions.ownership import ownership_answer
from reports.questions.truth import (
    calibration_panels,
    calibration_table,
    missed_paragraph,
    pair_sentence,
    run_paragraph,
    verdict,
)
from reports.runs import read_results
from reports.sections import per_task_section, summary_lines
from reports.text import fmt_interval, plural
from tests import chromium
from tests.helpers import check_sentences

TASK = "modes-2d"
REPS = 100
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def analysed(small_sweep):
    """The small sweep (modes-2d; dynamic and static-routing at K 2 and 4; 3 seeds; 300 updates) read and analysed."""
    results = read_results(small_sweep)
    return results, analyse(results, reps=REPS)


@pytest.fixture(scope="module")
def q4_text(analysed) -> str:
    """Every text of question 4's section (aggregates, comparisons, captions) on the small sweep."""
    return texts(question_dynamic_vs_static(*analysed).blocks)


def texts(blocks) -> str:
    """Every piece of text of some report blocks, joined."""
    parts = []
    for block in blocks:
        if isinstance(block, (Paragraph, Notice)):
            parts += [block.text, getattr(block, "command", "")]
        elif isinstance(block, Table):
            parts += [block.caption, block.note, *block.columns, *(" ".join(row) for row in block.rows)]
        elif isinstance(block, Figure):
            parts.append(block.caption)
    return "\n".join(parts)


def synthetic_summary(name: str, values) -> object:
    """A DiagnosticSummary of `name` logged with `values` (seeds, steps), as analysis builds it."""
    values = np.asarray(values, np.float64)
    logged = xr.Dataset({name: (("seed", "step"), values)},
                        coords={"seed": np.arange(values.shape[0]), "step": 100 * np.arange(1, values.shape[1] + 1)})
    return diagnostic_summary(logged, name, REPS, 0)


def with_diagnostics(analysis, **replaced):
    """The analysis with some (variable, task, ablation, K) summaries replaced: keys 'variable/ablation/K'."""
    diagnostics = dict(analysis.diagnostics)
    for key, summary in replaced.items():
        variable, ablation, k = key.split("/")
        diagnostics[(variable, TASK, ablation, int(k))] = summary
    return dataclasses.replace(analysis, diagnostics=diagnostics)


# ------------------------------------------------------------------------------------------------
# Early and late need enough intervals


def test_too_few_flip_intervals_give_no_settling_verdict_but_say_what_is_missing(analysed):
    results, analysis = analysed
    # Two log rows: the flip rate (NaN at the first row) has one interval, so early and late would be the same one.
    two_rows = run_diagnostics(results, TASK, "dynamic", 4).isel(step=slice(0, 2))
    one_interval = diagnostic_summary(two_rows, "flip_rate", REPS, 0)
    assert one_interval.rows == 1 and one_interval.early.point[0] > 0
    sentence = next(s for s in ownership_answer(results, with_diagnostics(analysis, **{"flip_rate/dynamic/4": one_interval}),
                                                TASK) if "K=4" in s and "Under dynamic" in s)
    assert "settling" not in sentence and "it settles" not in sentence and "keeps moving" not in sentence
    assert "in the only logged interval" in sentence and "early and late are the same value" in sentence
    assert "a verdict needs at least 3" in sentence and "--log-interval" in sentence

    # Enough intervals and seeds: a verdict, with the late-minus-early effect size and its threshold.
    settling = synthetic_summary("flip_rate", [np.linspace(0.4, 0.1, 6) * (1 + 0.05 * seed) for seed in range(5)])
    sentence = next(s for s in ownership_answer(results, with_diagnostics(analysis, **{"flip_rate/dynamic/4": settling}),
                                                TASK) if "K=4" in s and "Under dynamic" in s)
    assert "ownership moves, and it settles" in sentence
    assert re.search(r"late minus early difference -0\.[23]\d* \[-0\.\d+, -0\.\d+\], 5 seeds: material \(the whole "
                     r"interval lies beyond \+-0\.05\)", sentence), sentence
    # The same curves on 3 seeds: the numbers, no verdict.
    three = synthetic_summary("flip_rate", [np.linspace(0.4, 0.1, 6) * (1 + 0.05 * seed) for seed in range(3)])
    sentence = next(s for s in ownership_answer(results, with_diagnostics(analysis, **{"flip_rate/dynamic/4": three}),
                                                TASK) if "K=4" in s and "Under dynamic" in s)
    assert "settles" not in sentence and "no verdict with 3 seeds" in sentence and "(n=3)" in sentence


# ------------------------------------------------------------------------------------------------
# Aggregates that coincide by construction


def test_one_task_says_mean_and_median_coincide_and_iqm_is_the_mean_below_four_runs(analysed, q4_text):
    results, analysis = analysed
    group = analysis.groups[("dynamic", 2)]
    iqm, mean, median, _ = group.aggregates.point
    assert mean == median and iqm == pytest.approx(mean)  # 3 seeds x 1 task: what the text must say
    assert f"With one task ({TASK}), Mean and Median are the same number" in q4_text
    assert "dynamic K=2" in q4_text.split("the IQM equals the Mean")[0].splitlines()[-1]


# ------------------------------------------------------------------------------------------------
# Reference levels


def test_modes_tasks_know_their_reference_levels_from_their_own_evaluate():
    spec = MODES_TASKS[TASK]
    task = modes_task(TASK)
    levels = dict(task.reference_levels)
    assert set(levels) == {UNDERTRAINED_REFERENCE, "dataset average", "oracle"}
    assert 0.6 < levels[UNDERTRAINED_REFERENCE] < 0.65 and levels["oracle"] == pytest.approx(1.0, abs=1e-4)
    assert levels["dataset average"] < levels[UNDERTRAINED_REFERENCE] < levels["oracle"]
    # The random-mode level is the mean of "always play mode m" under the task's own evaluate (same states).
    geometry = ModesGeometry(spec)
    per_mode = [task.evaluate(lambda s, m=m: np.asarray(geometry.centres(s))[:, m], 1, 0)["score"]
                for m in range(spec.num_modes)]
    assert levels[UNDERTRAINED_REFERENCE] == pytest.approx(np.mean(per_mode), abs=1e-6)
    assert modes_evaluator(spec, geometry)(lambda s: np.asarray(geometry.best_action(s)), 1, 0)["score"] == \
        pytest.approx(levels["oracle"], abs=1e-6)
    bring_your_own = Task("mine", dataset={})
    assert dict(bring_your_own.reference_levels) == {}  # other tasks know none


def test_reference_levels_sit_beside_the_scores_and_runs_below_random_modes_are_undertrained(analysed, q4_text):
    results, analysis = analysed
    random_mode = analysis.references[TASK][UNDERTRAINED_REFERENCE]
    assert analysis.per_task[(TASK, "dynamic", 2)].mean.point[0] < random_mode  # 300 updates: undertrained
    per_task = per_task_section(results, analysis)
    notice = next(b for b in per_task.blocks if isinstance(b, Notice))
    # 3 seeds: whether the curves still rise cannot be told, so below the level, not "undertrained"
    assert notice.text.startswith("Below the best reference: modes-2d: dynamic K=2") and "not clearly flat" in \
        notice.text and "undertrained: still rising" not in notice.text
    table = next(b for b in per_task.blocks if isinstance(b, Table))
    assert (TASK, f"reference: {UNDERTRAINED_REFERENCE}", f"{random_mode:.3g}") == table.rows[-3][:3]
    assert "Below the best reference" in q4_text
    assert aggregates_table(results, analysis).rows[-3:] == tuple(
        (f"reference: {name}", *(f"{v:.3g}" for v in stats.aggregate_scores(np.array([[level]]))), "reference policy")
        for name, level in analysis.references[TASK].items())
    assert f"(below the best reference on {TASK}: not clearly flat)" in summary_lines(results, analysis)[2]
    efficiency = [p for p in score_panels(results, analysis) if p.title.startswith("Sample efficiency")]
    iqm_against_k = [p for p in k_panels(results, analysis) if p.title == "IQM against K"]
    for panel in efficiency + iqm_against_k:
        assert (pytest.approx(random_mode), UNDERTRAINED_REFERENCE) in [(v, label) for v, label in panel.levels]
    assert len(efficiency) == 2 and len(iqm_against_k) == 1


# ------------------------------------------------------------------------------------------------
# Effect sizes, thresholds, no mechanisms


def test_a_small_gap_is_no_material_difference_and_no_mechanism_is_asserted(analysed, q4_text):
    results, analysis = analysed
    # The case, on 5 seeds: 0.854 against 0.869, intervals apart, 1.5 points: negligible, not material.
    dynamic = synthetic_summary("conflict_frac", np.repeat([[0.849], [0.853], [0.856], [0.858], [0.855]], 3, axis=1))
    static = synthetic_summary("conflict_frac", np.repeat([[0.864], [0.868], [0.871], [0.873], [0.869]], 3, axis=1))
    assert dynamic.late.high[0] < static.late.low[0]
    small = with_diagnostics(analysis, **{"conflict_frac/dynamic/4": dynamic, "conflict_frac/static-routing/4": static})
    sentence = next(s for s in conflict_answer(results, small, TASK) if s.startswith("At K=4"))
    assert "dynamic minus static-routing late: difference -0.0148 [" in sentence
    assert sentence.endswith("5 seeds: negligible (the whole interval lies within +-0.05).")
    assert "re-routing" not in sentence and "resolve" not in sentence

    # A material difference: said so, and the mechanism only as a hypothesis these numbers do not test.
    lower = synthetic_summary("conflict_frac", np.repeat([[0.5], [0.52], [0.51], [0.53], [0.5]], 3, axis=1))
    large = with_diagnostics(analysis, **{"conflict_frac/dynamic/4": lower, "conflict_frac/static-routing/4": static})
    sentence = next(s for s in conflict_answer(results, large, TASK) if s.startswith("At K=4"))
    assert "material (the whole interval lies beyond +-0.05)" in sentence
    assert "One hypothesis, which these numbers do not test: re-routing" in sentence

    # Scores: every comparison gives the IQM difference with its seeds; 3 seeds a side give no verdict.
    assert re.search(r"dynamic K=2 against static-routing K=2 over the 1 task both ran \(modes-2d\): "
                     r"P\(dynamic > static-routing\) = .* IQM difference -?[\d.e-]+ \(n=3\): no verdict with 3 seeds",
                     q4_text)
    k_text = " ".join(k_answer(results, analysis))
    assert "IQM of each other K minus K=" in k_text and f"No verdict on K: fewer than {stats.MIN_RUNS} seeds" in k_text
    assert "intervals do not overlap" not in q4_text + k_text


def test_every_reported_quantity_has_a_threshold_and_reason_shown_in_the_docs():
    names = [*reported("summary"), *reported("per_probe")]
    assert sorted(REPORTING) == sorted(names)
    assert all(REPORTING[name].why for name in names)
    assert materiality_table() in (ROOT / "docs" / "reading-the-report.md").read_text(), \
        "docs/reading-the-report.md's table of materiality thresholds differs: paste " \
        "diagnostics.quantities.materiality_table() into it"


# ------------------------------------------------------------------------------------------------
# Small things


def test_words_for_degenerate_intervals_counts_and_absent_baselines(analysed, q4_text):
    results, analysis = analysed
    same = stats.Interval(np.zeros(1), np.zeros(1), np.zeros(1), 5)
    assert fmt_interval(same) == "0 (in every resample of the 5 seeds)"
    assert fmt_interval(dataclasses.replace(same, runs=3)) == "0 (n=3)"  # too few seeds: no interval
    assert (plural(1, "run"), plural(4, "run"), plural(1, "task")) == ("1 run", "4 runs", "1 task")
    k_text = " ".join(k_answer(results, analysis))
    assert "[0, 0]" not in k_text and "every candidate owns at least one probe late in training" in k_text
    assert "1 task," in summary_lines(results, analysis)[0] and "task(s)" not in summary_lines(results, analysis)[0]
    assert "fql" not in q4_text  # no fql run here


def inside(figure) -> bool:
    """Whether everything a drawn matplotlib figure shows (labels, ticks, titles, legend) lies within it."""
    figure.canvas.draw()
    shown, page = figure.get_tightbbox(figure.canvas.get_renderer()), figure.bbox_inches
    return shown.x0 >= -0.01 and shown.y0 >= -0.01 and shown.x1 <= page.x1 + 0.01 and shown.y1 <= page.y1 + 0.01


def test_figure_axes_stay_in_range_say_when_narrow_and_keep_their_labels_inside(analysed):
    results, analysis = analysed
    figure = draw_line_figure(k_panels(results, analysis), columns=2)
    axes = {ax.get_title().replace("\n", " "): ax for ax in figure.axes if ax.get_visible()}
    dead = axes[f"{TASK}: dead candidates (late)"]
    assert dead.get_ylim()[0] >= 0 and dead.get_ylim()[1] >= 2 * REPORTING["dead_candidates"].material
    low, high = axes[f"{TASK}: load entropy (late)"].get_ylim()
    assert high <= 1.0 and high - low >= 2 * REPORTING["load_entropy"].material - 1e-9
    assert inside(figure)  # legend entries (the reference levels) included

    steps = np.array([100.0, 200.0, 300.0])
    narrow = Panel("Q gap", "step", "Q units", (Line("dynamic", "dynamic", steps, np.array([0.998, 0.999, 1.0]),
                                                     np.full(3, np.nan), np.full(3, np.nan)),))
    ax = draw_line_figure([narrow]).axes[0]
    assert any(t.get_text().startswith("note: narrow axis") for t in ax.texts)

    rows = [IntervalRow(f"run {i}", "dynamic", (0.5,) * 4, (0.4,) * 4, (0.6,) * 4) for i in range(3)]
    rows.append(IntervalRow("reference: random supported mode", "reference", (0.62,) * 4, (np.nan,) * 4,
                            (np.nan,) * 4))
    figure = draw_interval_figure(list(stats.AGGREGATES), ["score (1 = best)"] * 3 + ["gap below 1 (lower is better)"],
                                  rows)
    assert inside(figure)  # "gap below 1 (lower is better)" wraps under its panel


def test_wide_html_tables_wrap_instead_of_scrolling_sideways(tmp_path):
    if not chromium.chromium_available():
        pytest.skip(f"Chromium is not installed at {chromium.CHROMIUM} ({chromium.INSTALL_HINT})")
    columns = ("run", *(f"task {t} IQM [95% CI]" for t in range(8)))
    rows = tuple((f"dynamic K={k}", *(f"0.{k + t}12 [0.{k + t}01, 0.{k + t}68]" for t in range(8))) for k in range(6))
    report = Report("wide", "", (), (Section("wide", "Wide", (Table("Eight tasks", columns, rows),)),))
    check = ("<script>for (const box of document.querySelectorAll('.table-scroll')) if (box.scrollWidth > "
             "box.clientWidth + 1) console.error('sideways scroll ' + box.scrollWidth + ' > ' + box.clientWidth)"
             "</script>")
    page = tmp_path / "wide.html"
    page.write_text(render_html(report).replace("</body>", check + "</body>"), encoding="utf-8")
    assert chromium.render_page(page, tmp_path / "wide.png").console_errors == []


def test_pdf_prints_paths_in_any_script_never_as_boxes(tmp_path):
    if shutil.which("pdftotext") is None or shutil.which("pdffonts") is None:
        pytest.skip("poppler-utils is not installed (apt-get install poppler-utils)")
    path = "/home/ana/数据/αβγ-runs"
    report = Report("paths", f"runs under {path}", (f"read {path}",),
                    (Section("s", "Paths", (Paragraph(f"a run in {path}"), Command("its command", f"drol-diag report {path}"),
                                            Table("runs", ("folder",), ((path,),)))),))
    pdf = tmp_path / "report.pdf"
    render_pdf(report, pdf)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    escaped = "/home/ana/\\u6570\\u636e/αβγ-runs"  # CJK (no glyph in any embedded font) escaped, Greek as typed
    assert text.count(escaped) >= 5, text
    assert "\ufffd" not in text and "数" not in text
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "DejaVuSans" in fonts


# ------------------------------------------------------------------------------------------------
# Estimates against the task's truth (issue 14; the pairs and the rank correlation: tests/test_calibration.py)


def late_per_seed(logged: xr.Dataset, name: str) -> np.ndarray:
    """Each seed's mean over the last third of its logged rows, from the raw log (as the report defines late)."""
    values = logged[name].dropna("step", how="all").values
    return values[:, -max(1, values.shape[1] // 3):].mean(axis=1)


def test_a_truth_task_shows_every_estimate_beside_its_truth_with_agreement_bar_and_verdict(analysed):
    results, analysis = analysed
    table = calibration_table(results, analysis, TASK)  # (the whole section, figure drawn: tests/test_report.py)
    rows = {(row[0], row[1].split(" ")[0]): dict(zip(table.columns, row)) for row in table.rows}
    for ablation, k in results.groups:  # every run, every pair (modes-2d knows its value and its density)
        label = f"{ablation} K={k}"
        assert {name for run, name in rows if run == label} == {c.estimate for c in CALIBRATIONS
                                                                if not c.multi_step}, label  # (one-step episodes)
        summaries = {s.calibration.estimate: s for s in analysis.calibrations[(TASK, ablation, k)]}
        raw = results.logs.sel(task=TASK, ablation=ablation, k=k)
        # |late estimate - late truth| per seed, from the raw log: the agreement the table shows and judges.
        for name, truth in (("ood_frac", "true_ood_frac"), ("conflict_frac", "true_conflict_frac")):
            per_seed = np.abs(late_per_seed(raw, name) - late_per_seed(raw, truth))
            np.testing.assert_allclose(summaries[name].agreement_values, per_seed)
            bar = summaries[name].calibration.bar
            assert rows[(label, name)]["verdict (bar)"].startswith("within the bar" if per_seed.mean() <= bar
                                                              else "outside the bar")
            assert fmt_interval(summaries[name].agreement) in rows[(label, name)]["agreement"]
        # The rank correlation per seed is scipy's Spearman of distance against minus log-density, every probe.
        distance, logp = (raw[n].transpose("seed", "step", "probe").values for n in ("support_dist", "behavior_logp"))
        expected = [spearmanr(d[np.isfinite(d)], -p[np.isfinite(p)]).statistic for d, p in zip(distance, logp)]
        np.testing.assert_allclose(summaries["support_dist"].agreement_values, expected)
        assert rows[(label, "support_dist")]["verdict (bar)"].startswith(
            "within the bar" if np.mean(expected) >= 0.7 else "outside the bar")
        assert rows[(label, "q_deployed")]["verdict (bar)"] == "no bar"
        bias = late_per_seed(raw, "q_deployed") - late_per_seed(raw, "true_value_deployed")
        assert summaries["q_deployed"].difference.point[0] == pytest.approx(bias.mean())
        paragraph = run_paragraph(TASK, ablation, k, analysis.calibrations[(TASK, ablation, k)]).text
        assert paragraph.startswith(f"{TASK}, {label} (3 seeds): ")
        assert f"{fmt_interval(summaries['q_deployed'].difference)} at the deployed action" in paragraph
        for name in ("ood_frac", "conflict_frac"):  # a miss is said in the run's paragraph, a hold in one clause
            missed = summaries[name].calibration.within_bar(float(summaries[name].agreement.point[0])) is False
            assert (f"{name} is " in paragraph) == missed and (f"{name} is " in paragraph or name in paragraph)
    # What an estimate that misses still measures: once per task, after the tally of misses.
    task_paragraph = missed_paragraph(TASK, analysis).text
    tally, good_for = task_paragraph.split(" Where each misses: ")
    missed = {s.calibration.estimate for runs in analysis.calibrations.values() for s in runs
              if s.calibration.within_bar(float(s.agreement.point[0])) is False}
    assert missed and all(f"{name} in " in tally for name in missed), task_paragraph
    assert all(name in good_for for name in missed), task_paragraph  # each named once (the two conflicts together)
    # The figure pairs each estimate (solid) with its truth (dotted) per K (the section's place: tests/test_report.py).
    panels = calibration_panels(results, analysis, TASK)
    assert [p.title for p in panels] == [f"{c.estimate} vs {c.truth}, K={k}" for c in CALIBRATIONS
                                         if c.measure == "difference" and c.bar is not None and not c.scale
                                         for k in (2, 4)]
    figure = draw_line_figure(panels, columns=2)
    styles = {line.get_label(): line.get_linestyle() for line in figure.axes[0].get_lines()}
    assert styles == {"dynamic: estimate": "-", "dynamic: truth": ":", "static-routing: estimate": "-",
                      "static-routing: truth": ":"}
    assert inside(figure)


def test_an_undefined_rank_correlation_and_diverged_seeds_are_said_never_dropped(analysed):
    results, analysis = analysed
    summaries = analysis.calibrations[(TASK, "dynamic", 4)]
    rank = next(s for s in summaries if s.calibration.estimate == "support_dist")
    nan = stats.Interval(np.full(1, np.nan), np.full(1, np.nan), np.full(1, np.nan), 0)
    # Every deployed action at the floor in every seed: undefined, said in the paragraph and the table.
    undefined = dataclasses.replace(rank, agreement=nan, agreement_values=np.full(3, np.nan))
    text = pair_sentence(undefined, summaries)
    assert "undefined: every deployed action has the same log-density (e.g. all beyond the support)" in text
    assert verdict(undefined) == "undefined"
    # In one seed of three: the interval rests on the other two, and the paragraph says which seed.
    one = dataclasses.replace(rank, agreement_values=np.array([rank.agreement_values[0], np.nan,
                                                               rank.agreement_values[2]]))
    assert "in 1 of the 3 seeds (seed 1); the mean and its interval rest on the other 2" in pair_sentence(one, summaries)
    # A diverged seed is left out as from every diagnostic, and counted where the run is reported.
    left_out = tuple(dataclasses.replace(s, left_out=(7,)) for s in summaries)
    assert "1 diverged seed, 7, left out" in run_paragraph(TASK, "dynamic", 4, left_out).text


# ------------------------------------------------------------------------------------------------
# The regret split (question 5): the oracle's lead over the deployed action in two terms


def test_question_five_splits_the_oracles_lead_into_no_candidate_and_the_deployed_sample(analysed):
    results, analysis = analysed
    sentences = regret_split_answer(results, analysis)
    (split,) = sentences  # one task
    assert split.startswith(f"{TASK}, late: the oracle's lead over the deployed action = no candidate reaches it")
    for k in (2, 4):  # modes-2d knows its best value: each term from the raw log, late, per seed
        raw = results.logs.sel(task=TASK, ablation="dynamic", k=k)
        best = late_per_seed(raw, "true_value_best_candidate")
        no_candidate, sampling = (get(analysis, name, TASK, "dynamic", k) for name in ("regret_no_candidate",
                                                                                        "regret_sampling"))
        np.testing.assert_allclose(no_candidate.late_values, late_per_seed(raw, "true_value_oracle") - best, rtol=1e-5)
        np.testing.assert_allclose(sampling.late_values, best - late_per_seed(raw, "true_value_deployed"), rtol=1e-5)
        assert f"K={k} {fmt_interval(no_candidate.late)} + {fmt_interval(sampling.late)}" in split
    dynamic = split[split.index(": dynamic K=2"):split.index(". static-routing K=2")]
    assert "; the first term at K=4 minus at K=2: " in dynamic and "(no reading with 3 seeds)" in dynamic
    assert split in texts(question_k(results, analysis).blocks)
    check_sentences(sentences)

    # 5 seeds whose first term shrinks from K=2 to K=4: read as the quantisation claim predicts.
    def no_candidate(lead):  # a derived quantity: from its two logged operands, (5 seeds, 3 rows)
        logged = xr.Dataset({"true_value_oracle": (("seed", "step"), np.ones((5, 3))),
                             "true_value_best_candidate": (("seed", "step"), 1 - lead - 0.01 * np.arange(15).reshape(5, 3))},
                            coords={"seed": np.arange(5), "step": 100 * np.arange(1, 4)})
        return diagnostic_summary(logged, "regret_no_candidate", REPS, 0)

    shrinking = with_diagnostics(analysis, **{"regret_no_candidate/dynamic/2": no_candidate(0.4),
                                              "regret_no_candidate/dynamic/4": no_candidate(0.1)})
    (text,) = regret_split_answer(results, shrinking)
    assert "; the first term at K=4 minus at K=2: -0.3 [" in text
    assert "it shrinks as K grows, as the claim that K candidates cover the rare good actions predicts" in text

    # Without the truth: the critic's view, said to be one.
    critic_only = dataclasses.replace(analysis, diagnostics={
        key: summary for key, summary in analysis.diagnostics.items()
        if key[0] not in ("regret_no_candidate", "regret_sampling")})
    (text,) = regret_split_answer(results, critic_only)
    critic = [get(analysis, "q_regret_sampling", TASK, "dynamic", k).late for k in (2, 4)]
    assert text.startswith(f"{TASK}, late, no ground truth logged: the critic's view only (its Q, not the true value)")
    assert f"q_best_candidate - q_deployed: dynamic K=2 {fmt_interval(critic[0])}; K=4 {fmt_interval(critic[1])}." in text


# ------------------------------------------------------------------------------------------------
# The critic against its own returns (question 8)


def test_question_eight_holds_the_critic_against_its_returns_and_names_evaluations_without_any(analysed):
    results, analysis = analysed
    for k in (2, 4):  # from the raw log: mc_bias is Q minus return at each evaluation; late over the last third
        raw = results.logs.sel(task=TASK, ablation="dynamic", k=k)
        np.testing.assert_allclose(raw["mc_bias"].values, raw["mc_q"].values - raw["mc_return"].values, atol=1e-5)
        values = raw["mc_bias"].transpose("seed", "eval_step").values
        bias = get(analysis, "mc_bias", TASK, "dynamic", k)
        np.testing.assert_allclose(bias.late_values, values[:, -max(1, values.shape[1] // 3):].mean(1), rtol=1e-6)
    assert one_step_task(results, TASK)  # modes-2d: each evaluation state a one-step episode (mc_episode_length 1)
    assert critic_answer(results, analysis, TASK) == [ONE_STEP]  # question 7 holds the same bias against the truth
    sentences = critic_sentences(results, analysis, TASK)
    bias = get(analysis, "mc_bias", TASK, "dynamic", 4)
    assert any(s.startswith(f"dynamic K=4: Q minus the Monte-Carlo return {fmt_interval(bias.early)} at first and "
                            f"{fmt_interval(bias.late)} late") for s in sentences)
    check_sentences(sentences)
    # Question 7 holds it against critic_bias in units of the return scale (|late difference| / late mc_abs_return)
    # on tasks with longer episodes only: on a one-step task the two are the same bias on other states.
    assert not [c for c in analysis.calibrations[(TASK, "dynamic", 4)] if c.calibration.estimate == "mc_bias"]
    logged = run_diagnostics(results, TASK, "dynamic", 4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("reports.analysis.one_step_episodes", lambda logged: False)  # (as if episodes were longer)
        (calibrated,) = [c for c in run_calibrations(results, logged, TASK, "dynamic", 4, REPS, 0)
                         if c.calibration.estimate == "mc_bias"]
    scale = diagnostic_summary(logged, "mc_abs_return", REPS, 0)
    np.testing.assert_allclose(calibrated.agreement_values, np.abs(
        bias.late_values - get(analysis, "critic_bias", TASK, "dynamic", 4).late_values) / scale.late_values)
    # An evaluation with no countable step: NaN, counted and named, never read as 0.
    steps = results.logs["mc_steps"].copy()
    steps.loc[dict(task=TASK, ablation="static-routing", k=2, seed=0)] = 0.0
    emptied = dataclasses.replace(results, logs=results.logs.assign(mc_steps=steps))
    evaluations = int(np.isfinite(steps.sel(task=TASK, ablation="static-routing", k=2)).sum())
    assert any(s.startswith(f"static-routing K=2: {evaluations // 3} of {evaluations} evaluations completed no "
                            "countable step") for s in critic_sentences(emptied, analysis, TASK))
