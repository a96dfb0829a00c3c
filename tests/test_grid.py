"""Hyper-parameter grids (`drol-diag sweep --grid bc_coef=0.3,1`), end to end: the sweep names a run folder per
grid point and records the grid, a second sweep skips them, `--status` reads them, open_runs gives bc_coef a
dim, the report draws a bc_coef curve and compares dynamic and static routing at matched settings, in the scores
and in every diagnostic question (ownership, support, conflict: each grid point against its own). Bad grids
end with one `error:` line, exit status 2 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ablations import grid
from ablations.sweep import plan_sweep, start_order
from diagnostics.runs import open_runs
from reports.analysis import analyse, comparisons, is_baseline
from reports.document import Notice, Paragraph
from reports.questions import question_conflict, question_ownership, question_support
from reports.questions.common import late_difference
from reports.questions.grid import matched_rows, question_grid, setting_curves
from reports.questions.support import support_estimate
from reports.runs import read_results
from reports.text import fmt_interval, group_label, run_ks
from tests.helpers import check_sentences, invoke
from tests.test_bad_input import assert_refused

TINY = ("--tasks", "modes-2d", "--k", "2", "--seeds", "0,1", "--steps", "40", "--hidden", "8", "--probes", "16",
        "--log-interval", "20", "--no-progress")
GRID = (*TINY, "--ablations", "dynamic,static-routing", "--grid", "bc_coef=0.3,1")
POINTS = ("dynamic-k2-bc_coef=0.3", "dynamic-k2-bc_coef=1.0", "static-routing-k2-bc_coef=0.3",
          "static-routing-k2-bc_coef=1.0")


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory) -> Path:
    """A finished sweep of dynamic and static-routing at bc_coef 0.3 and 1 (K 2, two seeds, 40 updates, diagnostics
    on 16 probes every 20 updates): four groups, two at a time."""
    out = tmp_path_factory.mktemp("grid") / "out"
    result = invoke("sweep", *GRID, "--out", str(out), "--jobs", "2", "--threads", "1")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def grid_results(grid_sweep):
    """The grid sweep's results and their analysis (50 bootstrap repetitions), read once for the tests that only
    query them (the report's command line reads its own)."""
    results = read_results(grid_sweep)
    return results, analyse(results, reps=50)


def test_grid_sweep_names_a_folder_per_point_records_the_grid_and_skips_finished_runs(grid_sweep):
    assert sorted(p.name for p in (grid_sweep / "modes-2d").iterdir() if not p.name.startswith(".")) == list(POINTS)
    config = json.loads((grid_sweep / "modes-2d" / POINTS[2] / "config.json").read_text())
    assert config["learner"]["bc_coef"] == 0.3 and config["run"]["grid_settings"] == ["bc_coef"]
    assert "--grid-settings bc_coef" in config["command"] and "--bc-coef 0.3" in config["command"]
    recorded = grid.spec_from_values(grid.read_sweep_file(grid_sweep / grid.SWEEP_FILE), {})
    assert recorded.grid == (("bc_coef", (0.3, 1.0)),) and recorded.ablations == ("dynamic", "static-routing")
    # Groups start a grid point at a time: the second point's share the first's programs instead of tracing them too.
    order = [planned.run_dir.name for planned in start_order(plan_sweep(recorded, grid_sweep.parent / "unstarted"))]
    assert order == [POINTS[0], POINTS[2], POINTS[1], POINTS[3]]
    again = invoke("sweep", *GRID, "--out", str(grid_sweep))  # every group finished: nothing runs
    assert again.exit_code == 0, again.output
    assert "4 groups x 2 seeds = 8 runs, 0 to run" in again.stdout and again.stdout.count("skipped") == 4
    status = invoke("sweep", "--status", str(grid_sweep))
    assert status.exit_code == 0 and "4 done" in status.stdout and "static-routing-k2-bc_coef=1.0" in status.stdout


def test_open_runs_gives_the_swept_setting_a_dim(grid_sweep):
    logs = open_runs(grid_sweep)
    assert logs["eval_score"].dims[:5] == ("task", "ablation", "k", "bc_coef", "seed")
    assert list(logs["bc_coef"].values) == [0.3, 1.0]
    for name in POINTS:  # each run at its own place, the same values as its folder opened alone
        ablation, bc_coef = name.split("-k2-bc_coef=")
        one = open_runs(grid_sweep / "modes-2d" / name)
        assert one["eval_score"].dims[:4] == ("task", "ablation", "k", "bc_coef")
        placed = logs["eval_score"].sel(ablation=ablation, bc_coef=float(bc_coef)).squeeze().values
        assert np.array_equal(placed, one["eval_score"].squeeze().values)
        assert str(logs["run_dir"].sel(ablation=ablation, bc_coef=float(bc_coef)).item()).endswith(name)


def test_report_draws_a_bc_coef_curve_and_compares_at_matched_settings(grid_sweep, grid_results):
    results, analysis = grid_results
    assert set(results.grid) == {"dynamic bc_coef=0.3", "dynamic bc_coef=1.0", "static-routing bc_coef=0.3",
                                 "static-routing bc_coef=1.0"}
    curves = setting_curves(results, analysis, "bc_coef")
    assert sorted(curves) == [("dynamic", 2, ()), ("static-routing", 2, ())]
    scores = results.scores.groupby("ablation")["score"].mean()
    for (ablation, _, _), points in curves.items():
        assert [value for value, _ in points] == [0.3, 1.0]
        assert [g.aggregates.point[0] for _, g in points] == pytest.approx(  # two seeds: the IQM is their mean
            [scores[f"{ablation} bc_coef={value}"] for value, _ in points])
    # dynamic at each point against static-routing at the same point only
    assert sorted(comparisons(results)) == [("dynamic bc_coef=0.3", 2, "static-routing bc_coef=0.3", 2),
                                            ("dynamic bc_coef=1.0", 2, "static-routing bc_coef=1.0", 2)]
    assert [row[0] for row in matched_rows(results, analysis)] == ["bc_coef=0.3", "bc_coef=1.0"]
    section = question_grid(results, analysis)
    assert any(getattr(block, "name", "") == "grid-sensitivity" for block in section.blocks)
    # The same through the command line: report.json maps each label to its point, section 5b holds the curve.
    made = invoke("report", str(grid_sweep), "--reps", "50")
    assert made.exit_code == 0, made.output
    # the summary's dynamic vs static line counts both matched points' verdicts (2 seeds: no verdict in either)
    assert "dynamic vs static-routing, 2 comparisons" in made.stdout and "no verdict (too few seeds) in 2" in made.stdout
    record = json.loads((grid_sweep / "report.json").read_text())
    assert record["grid"]["static-routing bc_coef=0.3"] == {"ablation": "static-routing", "settings": {"bc_coef": 0.3}}
    assert any("IQM bc_coef=0.3" in answer for answer in record["answers"]["q5b-grid"])
    # 2 seeds a point: every sentence gives numbers, never a verdict or "beats" (tests.helpers.check_sentences)
    check_sentences([s for answers in record["answers"].values() for s in answers] + record["summary"])
    assert {v["verdict"] for v in record["verdicts"]} == {"too few runs"}
    html = (grid_sweep / "report.html").read_text()
    assert 'id="q5b-grid"' in html and 'id="figure-grid-sensitivity"' in html


def test_diagnostic_questions_answer_each_grid_point_and_compare_dynamic_and_static_at_matched_settings(grid_results):
    results, analysis = grid_results
    sections = {question.__name__: question(results, analysis)
                for question in (question_ownership, question_support, question_conflict)}
    for name, section in sections.items():  # both ablations ran: nothing is said to be missing
        assert not [b for b in section.blocks if isinstance(b, Notice) and b.kind == "missing"], name
    text = {name: " ".join(b.text for b in s.blocks if isinstance(b, Paragraph)) for name, s in sections.items()}
    for value in (0.3, 1.0):
        assert f"Under dynamic routing with K=2, bc_coef={value} (2 seeds)" in text["question_ownership"]
        assert f"static-routing (K=2, bc_coef={value}) never reassigns" in text["question_ownership"]
        # each dynamic grid point against static-routing at the same point, never at another
        share = support_estimate(results, analysis, "modes-2d")[0]  # the out-of-support estimate the report reads
        for name, variable in (("question_support", share), ("question_conflict", "conflict_frac")):
            dynamic = analysis.diagnostics[(variable, "modes-2d", f"dynamic bc_coef={value}", 2)].late_values
            static = analysis.diagnostics[(variable, "modes-2d", f"static-routing bc_coef={value}", 2)].late_values
            difference = late_difference(results, analysis, variable, "modes-2d", f"dynamic bc_coef={value}", 2)
            assert difference.point[0] == pytest.approx(np.mean(dynamic) - np.mean(static))
            assert f"At K=2, bc_coef={value}, " in text[name] and fmt_interval(difference) in text[name]
    assert late_difference(results, analysis, "ood_frac", "modes-2d", "dynamic bc_coef=3.0", 2) is None


@pytest.mark.parametrize("args, phrase", [
    (("--ablations", "dynamic", "--grid", "routing_temperature=0.5,1"), "it applies to soft-routing"),
    (("--ablations", "dynamic", "--grid", "alpha=1,10"), "it applies to fql"),
    (("--ablations", "dynamic", "--grid", "bc_coef=0.3,high"), "'high' is not a float"),
    (("--ablations", "dynamic", "--grid", "bc_coef="), "empty grid"),
    (("--ablations", "dynamic", "--grid", "bc_coef=0.3,1", "--bc-coef", "1"), "both as a --grid axis and as its own"),
    (("--ablations", "dynamic", "--grid", "seeds=1,2"), "'seeds' is not a learner setting a grid can vary"),
])
def test_bad_grids_are_refused_before_anything_is_written(tmp_path, args, phrase):
    result = invoke("sweep", *TINY, *args, "--out", str(tmp_path / "out"))
    assert_refused(result, phrase)
    assert not (tmp_path / "out").exists()


def test_a_run_names_only_its_learner_settings_as_grid_settings(tmp_path):
    result = invoke("run", "--ablation", "dynamic", "--grid-settings", "alpha", "--out", str(tmp_path / "out"))
    assert_refused(result, "--grid-settings alpha: not a setting of dynamic's learner")
    assert not (tmp_path / "out").exists()


def test_sweep_file_grid_table_is_read_and_checked(tmp_path):
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text('ablations = ["dynamic", "fql"]\n[grid]\nbc_coef = [0.3, 1]\nalpha = [1, 10]\n')
    spec = grid.spec_from_values(grid.read_sweep_file(sweep_file), {"tasks": "modes-2d", "k": "2"})
    points = [(g.ablation, g.settings) for g in grid.expand(spec)]  # each ablation varies what it takes
    assert points == [("dynamic", (("bc_coef", 0.3),)), ("dynamic", (("bc_coef", 1.0),)),
                      ("fql", (("alpha", 1.0),)), ("fql", (("alpha", 10.0),))]
    assert grid.spec_from_values(grid.read_sweep_file(sweep_file), {}).grid == spec.grid  # (the file's own grid)
    # A flag setting swept reaches each run as its flag: --normalize-q-loss / --no-normalize-q-loss.
    flags = grid.spec_from_values({}, {"tasks": "modes-2d", "grid": ["normalize_q_loss=true,false"]})
    on, off = [grid.run_arguments(flags, group, tmp_path) for group in grid.expand(flags)]
    assert "--normalize-q-loss" in on and "--no-normalize-q-loss" in off
    assert not {"True", "False"} & {*on, *off}
    sweep_file.write_text('ablations = ["dynamic"]\n[grid]\nbc_coef = ["a"]\n')
    assert_refused(invoke("sweep", "--from", str(sweep_file), "--out", str(tmp_path / "out")), "bc_coef")
    sweep_file.write_text('ablations = ["dynamic"]\n[grid]\nbc_coef = []\n')
    assert_refused(invoke("sweep", "--from", str(sweep_file), "--out", str(tmp_path / "out")), "empty grid")
    assert not (tmp_path / "out").exists()


def test_a_grid_point_of_fql_is_the_baseline_without_k():
    assert is_baseline("fql alpha=3.0") and is_baseline("fql") and not is_baseline("dynamic bc_coef=3.0")
    assert group_label("fql alpha=3.0", 1) == "fql alpha=3.0" and group_label("dynamic bc_coef=3.0", 4) == (
        "dynamic bc_coef=3.0 K=4")
    assert run_ks([("fql alpha=3.0", 1), ("dynamic bc_coef=3.0", 4)]) == [4]  # fql's K=1 is not a K that was run
