"""`drol-diag report` on a real small sweep (the session's, tests/conftest.py: modes-2d, dynamic and
static-routing, K 2 and 4, 3 seeds, tiny networks): scores.csv against the logs, report.json against
rliable run directly, the referee answers, the HTML in headless Chromium, the PDF through poppler,
and bad input."""

import base64
import json
import re
import shlex
import shutil
import subprocess
from html import escape as html_escape
from html import unescape as html_unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
import xarray as xr
from rliable import library as rly
from rliable import metrics

from ablations import grid
from ablations.sweep import plan_sweep
from cli import app
from diagnostics.quantities import CALIBRATIONS
from drol_diag.runfolder import store
from reports import stats
from reports.analysis import analyse
from reports.runs import read_results
from reports.text import fmt
from tests.chromium import chromium_available, render_page
from tests.helpers import check_sentences, invoke

REPS = 200  # bootstrap repetitions in these tests (the default is 2000)
# The single-seed runs of odd_runs: tiny networks, 200 updates.
TINY = ["--hidden", "8", "--log-interval", "100", "--eval-interval", "100", "--checkpoint-interval", "300",
        "--eval-episodes", "1", "--probes", "64"]



def report(*args: str):
    return invoke("report", *args)


@pytest.fixture(scope="module")
def reported(small_sweep, tmp_path_factory) -> tuple[Path, str]:
    """The small sweep (a copy: the report writes into its folder), reported once with REPS repetitions:
    (its folder, what the report printed)."""
    out = tmp_path_factory.mktemp("report") / "runs"
    shutil.copytree(small_sweep, out, symlinks=True)
    made = report(str(out), "--reps", str(REPS), "--figures", str(out / "figures"))
    assert made.exit_code == 0, made.output
    return out, made.output


@pytest.fixture(scope="module")
def sweep(reported) -> Path:
    return reported[0]


def report_json(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


def test_report_writes_its_four_outputs_and_a_three_line_summary(reported):
    sweep, output = reported
    lines = output.strip().splitlines()
    assert str(sweep / "report.html") in lines[-4] and str(sweep / "report.pdf") in lines[-4]
    assert ("4 run folders found: 4 read, 0 skipped; 1 task, ablations dynamic, static-routing, K 2,4, "
            "3 seeds each") in lines[-3]
    assert lines[-2].strip().startswith("dynamic vs static-routing, 2 comparisons") and "highest IQM" in lines[-1]
    assert "no verdict (too few seeds) in 2" in lines[-2]  # 3 seeds a side: counted, no verdict
    for name in ("report.html", "report.pdf", "scores.csv", "report.json"):
        assert (sweep / name).stat().st_size > 0, name
    assert not list(sweep.glob("*.tmp*")), "a temporary file was left behind"


def test_figures_folder_holds_every_figure_the_html_embeds(reported):
    sweep, output = reported
    assert f"the figures in {sweep / 'figures'}" in output
    html = (sweep / "report.html").read_text()
    files = sorted((sweep / "figures").iterdir())
    assert len(files) == html.count('<img src="data:image/png;base64,') > 5
    for path in files:
        assert path.suffix == ".png" and base64.b64encode(path.read_bytes()).decode("ascii") in html, path.name


def test_scores_csv_is_the_mean_of_the_last_three_evaluations_in_each_runs_log(sweep):
    scores = pd.read_csv(sweep / "scores.csv")
    assert len(scores) == 2 * 2 * 3 and list(scores.columns[:5]) == ["task", "ablation", "k", "seed", "score"]
    for (ablation, k), rows in scores.groupby(["ablation", "k"]):
        run_dir = sweep / "modes-2d" / f"{ablation}-k{k}"
        with xr.open_zarr(run_dir / store.LOG_STORE, consolidated=False) as logs:
            evals = logs["eval_score"].values  # (seeds, evaluations) as the run logged them
            seeds = logs["seed"].values.tolist()
        assert evals.shape[1] >= 3
        for row in rows.itertuples():
            expected = evals[seeds.index(row.seed), -3:].mean()
            assert row.score == pytest.approx(expected, rel=1e-9), (ablation, k, row.seed)
        trainer = store.read_json(run_dir / store.SUMMARY_FILE)["scores"]  # what `drol-diag run` printed
        assert rows.sort_values("seed").score.tolist() == pytest.approx(trainer, rel=1e-9)


def matrices(sweep: Path) -> dict[tuple[str, int], np.ndarray]:
    """(ablation, K) -> (runs, tasks) matrix rebuilt from scores.csv."""
    scores = pd.read_csv(sweep / "scores.csv")
    return {(a, int(k)): rows.pivot(index="seed", columns="task", values="score").to_numpy()
            for (a, k), rows in scores.groupby(["ablation", "k"])}


def assert_interval(entry: dict, point: float, low: float, high: float) -> None:
    assert entry["point"] == pytest.approx(point, rel=1e-12, abs=1e-15)
    assert entry["low"] == pytest.approx(low, rel=1e-12, abs=1e-15)
    assert entry["high"] == pytest.approx(high, rel=1e-12, abs=1e-15)


def test_every_aggregate_and_interval_equals_rliable_run_directly_with_the_same_seed(sweep):
    record = report_json(sweep)
    reps, seed = record["bootstrap"]["reps"], record["bootstrap"]["seed"]
    assert reps == REPS
    by_group = matrices(sweep)
    for (ablation, k), matrix in by_group.items():
        np.random.seed(seed)
        points, intervals = rly.get_interval_estimates({"x": matrix}, stats.aggregate_scores, reps=reps)
        for i, name in enumerate(stats.AGGREGATES):
            entry = record["aggregates"][name][ablation][str(k)]
            assert entry["runs"] == 3 and entry["seeds"] == [0, 1, 2]
            assert_interval(entry, points["x"][i], intervals["x"][0][i], intervals["x"][1][i])

        np.random.seed(seed)
        profile, bands = rly.create_performance_profile({"x": matrix}, stats.PROFILE_TAUS, reps=reps)
        entry = record["performance_profile"][ablation][str(k)]
        np.testing.assert_array_equal(entry["point"], profile["x"])
        np.testing.assert_array_equal([entry["low"], entry["high"]], bands["x"])

    for k in (2, 4):
        np.random.seed(seed)
        pair = [by_group[("dynamic", k)], by_group[("static-routing", k)]]
        points, intervals = rly.get_interval_estimates(
            {"x": pair}, lambda x, y: np.array([metrics.probability_of_improvement(x, y)]), reps=reps)
        assert_interval(record["probability_of_improvement"]["dynamic>static-routing"][str(k)],
                        points["x"][0], intervals["x"][0][0], intervals["x"][1][0])

    # Sample efficiency: IQM per evaluation step over the (runs, tasks, steps) evaluation scores.
    with xr.open_zarr(sweep / "modes-2d" / "dynamic-k4" / store.LOG_STORE, consolidated=False) as logs:
        curves = logs["eval_score"].values[:, None, :]
    np.random.seed(seed)
    points, intervals = rly.get_interval_estimates({"x": curves}, stats.iqm_per_step, reps=reps)
    entry = record["sample_efficiency"]["dynamic"]["4"]
    np.testing.assert_allclose(entry["point"], points["x"], rtol=1e-12)
    np.testing.assert_allclose([entry["low"], entry["high"]], intervals["x"], rtol=1e-12)

    # Per task: mean over seeds with its interval.
    values = by_group[("static-routing", 2)]
    np.random.seed(seed)
    points, intervals = rly.get_interval_estimates({"x": values[:, :, None]}, stats.seed_mean, reps=reps)
    entry = record["per_task"]["modes-2d"]["static-routing"]["2"]
    assert_interval({"point": entry["mean"], "low": entry["low"], "high": entry["high"]}, points["x"][0],
                    intervals["x"][0][0], intervals["x"][1][0])
    assert entry["std"] == pytest.approx(np.std(values, ddof=1))


def test_the_same_inputs_give_the_same_intervals_and_another_seed_other_ones(sweep, tmp_path):
    first = report_json(sweep)
    again = report(str(sweep), "--reps", str(REPS), "--html", str(tmp_path / "a.html"), "--pdf", str(tmp_path / "a.pdf"))
    assert again.exit_code == 0, again.output
    assert report_json(sweep) == first
    assert (tmp_path / "a.html").stat().st_size > 0 and (tmp_path / "a.pdf").stat().st_size > 0  # --html, --pdf
    # Another seed (what `report --seed 1` passes on; computed here without writing over the folder's report)
    other = analyse(read_results(sweep), reps=REPS, seed=1).groups[("dynamic", 4)].sample_efficiency.estimate
    assert np.array_equal(other.point, first["sample_efficiency"]["dynamic"]["4"]["point"])  # no randomness there
    assert not np.array_equal(other.low, first["sample_efficiency"]["dynamic"]["4"]["low"])  # the seed resamples


def test_question_one_answer_says_static_routing_never_reassigns_and_dynamic_does(sweep):
    answers = " ".join(report_json(sweep)["answers"]["q1-ownership"])
    assert "static-routing (K=2) never reassigns" in answers and "static-routing (K=4) never reassigns" in answers
    flips = report_json(sweep)["diagnostics"]["flip_rate"]["modes-2d"]
    assert max(flips["static-routing"]["4"]["curve"]["point"]) == 0
    assert max(flips["dynamic"]["4"]["curve"]["point"]) > 0  # dynamic routing does reassign on this task
    assert "Under dynamic routing with K=4 (3 seeds)" in answers


def test_every_referee_section_has_an_answer_or_a_command(sweep):
    record = report_json(sweep)
    html = (sweep / "report.html").read_text()
    for anchor in ("q1-ownership", "q2-support", "q3-conflict", "q4-dynamic-vs-static", "q5-k", "q6-error-bars"):
        assert f'id="{anchor}"' in html and f'href="#{anchor}"' in html, anchor
        assert record["answers"][anchor], f"section {anchor} has no paragraph"
    recorded = (sweep / "sweep.toml").read_text().splitlines()[1].removeprefix("# command: ")
    assert html_escape(recorded) in html  # the inventory shows the command that made the runs


def test_question_five_shows_the_regret_split_per_run_and_k(sweep):
    record = report_json(sweep)
    split = next(s for s in record["answers"]["q5-k"] if s.startswith("modes-2d, late: the oracle's lead"))
    for k in ("2", "4"):  # modes-2d knows its best value: both terms, late, with their seeds
        terms = [record["diagnostics"][name]["modes-2d"]["dynamic"][k]["late"]
                 for name in ("regret_no_candidate", "regret_sampling")]
        assert all(term["runs"] == 3 for term in terms)
        assert f"K={k} {fmt(terms[0]['point'])} (n=3) + {fmt(terms[1]['point'])} (n=3)" in split
    assert "; the first term at K=4 minus at K=2: " in split  # the quantisation claim's reading (3 seeds: none)
    assert "no candidate reaches it (true_value_oracle - true_value_best_candidate)" in split
    assert html_escape(split) in (sweep / "report.html").read_text()


def test_no_sentence_says_what_the_verdict_and_seed_rules_forbid(sweep):
    """Every sentence of report.json (3 seeds a side): no verdict, no "beats", no "no material difference"; the table
    of verdicts counts each difference once, with its seeds; the HTML leads with it."""
    record = report_json(sweep)
    sentences = [s for answers in record["answers"].values() for s in answers] + record["summary"]
    check_sentences(sentences)
    assert all(" beats " not in s and re.search(r"\], \d+ seeds: (material|negligible|inconclusive)", s) is None
               for s in sentences)  # 3 seeds: numbers only
    verdicts = record["verdicts"]
    assert {v["verdict"] for v in verdicts} == {"too few runs"} and all(v["seeds"] == 3 for v in verdicts)
    assert sum(v["question"].startswith("4.") for v in verdicts) == 2  # dynamic vs static at K 2 and 4
    html = (sweep / "report.html").read_text()
    assert html.index('id="verdicts"') < html.index('id="inventory"') < html.index('id="q1-ownership"')


def test_the_report_holds_every_estimate_against_the_tasks_truth_after_question_six(sweep):
    record = report_json(sweep)
    runs = record["calibration"]["runs"]["modes-2d"]  # modes-2d knows its true value and behaviour density
    assert {(a, k) for a in runs for k in runs[a]} == {("dynamic", "2"), ("dynamic", "4"), ("static-routing", "2"),
                                                      ("static-routing", "4")}
    bars = {c.estimate: c for c in CALIBRATIONS}
    for ablation, by_k in runs.items():
        for k, pairs in by_k.items():
            assert set(pairs) == {name for name, c in bars.items() if not c.multi_step}, (ablation, k)  # one-step
            for name, pair in pairs.items():
                assert pair["truth"] == bars[name].truth and pair["bar"] == bars[name].bar
                assert pair["seeds"] == [0, 1, 2] and pair["diverged_left_out"] == []
                per_seed = [v for v in pair["agreement_per_seed"] if v is not None]
                assert pair["agreement"]["point"] == pytest.approx(np.mean(per_seed))
                assert pair["within_bar"] == bars[name].within_bar(pair["agreement"]["point"])
            assert pairs["support_dist"]["pairs_per_seed"] == [3 * 64] * 3  # 3 logged rows x 64 probes, every seed
    answers = record["answers"]["q7-truth"]
    (paragraph,) = [text for text in answers if text.startswith("modes-2d, dynamic K=4 (3 seeds): ")]
    held = [name for name, pair in runs["dynamic"]["4"].items() if pair["within_bar"]]
    # Estimates within their bars share one clause (their figures are in the table); the others a sentence each.
    assert all(name in paragraph.split("within their bars: ")[1].split(".")[0] for name in held), (held, paragraph)
    assert all(f"{name} " in paragraph for name in set(bars) - set(held)
               if bars[name].bar is not None and not bars[name].multi_step), paragraph  # (one-step episodes)
    assert "The critic's Q minus the true value, late: " in paragraph
    html = (sweep / "report.html").read_text()
    assert html.index('id="q6-error-bars"') < html.index('id="q7-truth"') < html.index('id="per-task"')
    assert "Do the diagnostics measure what they say?" in html and 'alt="modes-2d: each diagnostic estimate' in html


def test_html_opens_in_chromium_with_every_figure_rendered_and_no_console_errors(sweep, tmp_path):
    if not chromium_available():
        pytest.skip("Chromium is missing: apt-get install chromium (make test installs it)")
    html = (sweep / "report.html").read_text()
    assert "http://" not in html and "https://" not in html  # self-contained
    check = render_page(sweep / "report.html", tmp_path / "report.png")
    assert len(check.images) == html.count("<img") >= 6
    assert check.broken_images == [] and check.console_errors == []
    from matplotlib.image import imread
    pixels = imread(check.screenshot)
    assert pixels.shape[1] == 1280 and pixels.std() > 0.05


def test_pdf_leads_with_its_verdicts_and_is_short_none_blank(sweep, tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils is missing: apt-get install poppler-utils (make test installs it)")
    info = subprocess.run(["pdfinfo", str(sweep / "report.pdf")], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages <= 14  # 4 runs at 2 K; each section used to start a page of its own: 27 pages for 8 tiny runs
    first = subprocess.run(["pdftotext", "-l", "1", str(sweep / "report.pdf"), "-"], capture_output=True,
                           text=True).stdout
    assert "Summary of verdicts" in first and "question" in first and "comparison" in first  # the table, page 1
    subprocess.run(["pdftoppm", "-r", "20", "-png", str(sweep / "report.pdf"), str(tmp_path / "page")], check=True)
    from matplotlib.image import imread
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == pages
    for image in images:
        assert imread(image).std() > 0.01, f"{image.name} is blank"
    text = subprocess.run(["pdftotext", str(sweep / "report.pdf"), "-"], capture_output=True, text=True).stdout
    assert "Does ownership move" in text and "never reassigns" in text


def test_the_demos_shape_reports_in_at_most_ten_pages(small_sweep, tmp_path):
    """The demo's shape (one task, dynamic and static-routing at one K):
    two runs of the small sweep, reported; the PDF holds at most 10 pages."""
    if shutil.which("pdfinfo") is None:
        pytest.skip("poppler-utils is missing: apt-get install poppler-utils (make test installs it)")
    for group in ("dynamic-k4", "static-routing-k4"):
        shutil.copytree(small_sweep / "modes-2d" / group, tmp_path / "modes-2d" / group, symlinks=True)
    made = report(str(tmp_path), "--reps", "50")
    assert made.exit_code == 0, made.output
    info = subprocess.run(["pdfinfo", str(tmp_path / "report.pdf")], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages <= 10, pages
    last = subprocess.run(["pdftotext", "-f", str(pages), "-l", str(pages), str(tmp_path / "report.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert len([line for line in last.splitlines() if line.strip()]) > 2, "the last page holds only its footer"


# ------------------------------------------------------------------------------------------------
# Bad input


def test_an_empty_or_missing_folder_is_one_line_exit_2_and_writes_nothing(tmp_path):
    for folder in (tmp_path, tmp_path / "missing"):
        made = report(str(folder))
        assert made.exit_code == 2 and made.output.count("\n") <= 2, made.output
        assert "error:" in made.output and ("no runs under" in made.output or "no such folder" in made.output)
    assert list(tmp_path.iterdir()) == []


def test_bad_options_are_one_line_exit_2(tmp_path):
    made = report(str(tmp_path), "--reps", "3")
    assert made.exit_code == 2 and "--reps must be at least 10" in made.output
    made = report(str(tmp_path), "--html", str(tmp_path / "no" / "such" / "r.html"))
    assert made.exit_code == 2 and "does not exist" in made.output
    assert not (tmp_path / "no").exists()
    made = report(str(tmp_path), "--figures", str(tmp_path / "no" / "such"))
    assert made.exit_code == 2 and "cannot write figures into" in made.output and not (tmp_path / "no").exists()


@pytest.fixture(scope="module")
def odd_runs(tmp_path_factory) -> Path:
    """One seed of dynamic K=2 (healthy), one of static-routing K=2 that diverges at once (lr 1e30)."""
    out = tmp_path_factory.mktemp("odd")
    for ablation, extra in (("dynamic", []), ("static-routing", ["--lr", "1e30"])):
        run = invoke("run", "--task", "modes-2d", "--ablation", ablation, "--k", "2", "--seeds", "0", "--steps", "200",
                     *TINY, *extra, "--out", str(out), "--no-progress")
        assert run.exit_code == 0, run.output[-2000:]
    return out


def test_single_seeds_and_diverged_seeds_are_said_not_plotted_as_zero_width(odd_runs):
    made = report(str(odd_runs), "--reps", "50")
    assert made.exit_code == 0, made.output
    record = report_json(odd_runs)
    iqm = record["aggregates"]["IQM"]["dynamic"]["2"]
    assert iqm["runs"] == 1 and iqm["point"] is not None and iqm["low"] is None and iqm["high"] is None
    assert "static-routing" not in record["aggregates"]["IQM"]  # its only seed diverged: no score
    scores = pd.read_csv(odd_runs / "scores.csv")
    diverged = scores[scores.ablation == "static-routing"]
    assert diverged.diverged.all() and diverged.score.isna().all()
    html = (odd_runs / "report.html").read_text()
    assert "Fewer than 5 seeds for dynamic K=2" in html and "(n=1)" in html
    assert "1 seed run diverged" in html
    assert "--seeds 0-4 --force" in html  # what to run to get intervals and verdicts


def test_a_run_whose_every_seed_diverged_is_named_in_the_truth_section_not_dropped(odd_runs):
    from reports.analysis import analyse
    from reports.questions.truth import question_truth
    from reports.runs import read_results

    results = read_results(odd_runs)
    texts = [b.text for b in question_truth(results, analyse(results, reps=10)).blocks if hasattr(b, "text")]
    assert "modes-2d, static-routing K=2: every seed diverged (1 seed: 0)" in " ".join(texts)
    healthy = next(t for t in texts if t.startswith("modes-2d, dynamic K=2 (1 seed)"))
    assert "rank correlation" in healthy and "(n=1)" in healthy


def test_runs_without_evaluations_get_a_section_that_says_what_to_run(odd_runs, tmp_path):
    """A run stopped before its first evaluation: the logs of a real run without its evaluation rows."""
    run_dir = tmp_path / "runs" / "modes-2d" / "dynamic-k2"
    shutil.copytree(odd_runs / "modes-2d" / "dynamic-k2", run_dir, symlinks=True)
    with xr.open_zarr(run_dir / store.LOG_STORE, consolidated=False) as logs:
        kept = logs.drop_dims("eval_step").load()
    (run_dir / store.LOG_STORE).unlink()
    shutil.rmtree(run_dir / ".versions")
    kept.to_zarr(run_dir / store.LOG_STORE, consolidated=False)
    made = report(str(tmp_path / "runs"), "--reps", "50")
    assert made.exit_code == 0, made.output
    assert "no evaluation scores" in made.output
    html = (tmp_path / "runs" / "report.html").read_text()
    assert "No run has evaluation scores" in html and "drol-diag sweep --tasks modes-2d" in html
    assert pd.read_csv(tmp_path / "runs" / "scores.csv").score.isna().all()


def test_one_ablation_one_k_sections_print_the_sweep_command_that_fills_them(odd_runs, tmp_path):
    folder = tmp_path / "runs"
    shutil.copytree(odd_runs / "modes-2d" / "dynamic-k2", folder / "modes-2d" / "dynamic-k2", symlinks=True)
    made = report(str(folder), "--reps", "50")
    assert made.exit_code == 0, made.output
    html = (folder / "report.html").read_text()
    assert "missing: static-routing" in html and "--ablations dynamic,static-routing" in html
    assert "Only K=2 was run" in html and "--k 1,2,4,16" in html
    # The printed command is one the sweep accepts as it stands: it plans the new groups, keeps the run.
    command = next(line for line in html.splitlines() if "drol-diag sweep" in line and "--k 1,2,4,16" in line)
    words = shlex.split(html_unescape(command[command.index("drol-diag sweep"):].split("<")[0]))
    params = typer.main.get_command(app).commands["sweep"].make_context("sweep", words[2:]).params  # parsed, not run
    out = params.pop("out")
    not_grid = ("from_file", "executor", "address", "jobs", "threads", "dry_run", "force", "progress")
    spec = grid.spec_from_values({}, {key: value for key, value in params.items() if key not in not_grid})
    plan = plan_sweep(spec, out)
    assert Path(out) == folder and {(p.group.ablation, p.group.k) for p in plan.groups} == {("dynamic", k) for k in (1, 2, 4, 16)}
    finished = [p for p in plan.groups if p not in plan.to_run]
    assert [(p.group.ablation, p.group.k) for p in finished] == [("dynamic", 2)]  # its settings match the run's
