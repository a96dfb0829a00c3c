"""A run's score does not depend on how the run was split (issue 13): `run --steps 30`, then
`run --steps 60 --resume`, scores what a straight 60-step run scores, in the printed summary and in
the report's scores.csv; the first leg's final evaluation, off the final schedule, stays in the log
marked. And the `drol-diag sweep` commands the report prints to fill a section are ones the sweep
planner accepts for that folder, also after a run in it was extended."""

from __future__ import annotations

import re
import shlex

import numpy as np
import pytest

from drol_diag.runfolder import scoring, store
from tests.helpers import invoke

# Every chunk 10 updates long: one training program, the one tests/test_run.py's small runs compile too (the
# session's compilation cache has it).
TINY_RUN = ["run", "--task", "modes-2d", "--hidden", "16", "--batch-size", "16", "--k", "2", "--seeds", "0",
            "--eval-interval", "20", "--log-interval", "10", "--checkpoint-interval", "10", "--eval-episodes", "2",
            "--no-diagnostics", "--no-progress"]


def printed_mean_score(output: str) -> float:
    return float(re.search(r"mean score (\S+)", output).group(1))


def test_an_extended_run_scores_as_the_uninterrupted_run_and_keeps_its_off_grid_evaluation_marked(tmp_path):
    from reports.runs import eval_curves, read_results, score_matrix

    straight = invoke(*TINY_RUN, "--steps", "60", "--out", str(tmp_path / "straight"))
    first_leg = invoke(*TINY_RUN, "--steps", "30", "--out", str(tmp_path / "split"))
    extended = invoke(*TINY_RUN, "--steps", "60", "--resume", "--out", str(tmp_path / "split"))
    assert straight.exit_code == first_leg.exit_code == extended.exit_code == 0, extended.output

    split_dir = tmp_path / "split" / "modes-2d" / "dynamic-k2"
    logs = store.read_store(split_dir)
    assert logs["eval_step"].values.tolist() == [20, 30, 40, 60]  # the first leg's end, at 30, is still there
    assert logs["eval_counted"].values.tolist() == [[True, False, True, True]]
    assert np.isfinite(logs["eval_score"].sel(eval_step=30).values).all()
    straight_logs = store.read_store(tmp_path / "straight" / "modes-2d" / "dynamic-k2")
    assert straight_logs["eval_counted"].values.all()
    # The evaluations both runs made agree (same parameters, same evaluation seeds): only the one at 30 is extra.
    np.testing.assert_array_equal(logs["eval_score"].sel(eval_step=[20, 40, 60]).values,
                                  straight_logs["eval_score"].values)
    at_30 = logs["eval_score"].sel(eval_step=30).values[0]
    assert at_30 != straight_logs["eval_score"].sel(eval_step=20).values[0], "the test needs the extra one to differ"

    assert printed_mean_score(extended.stdout) == printed_mean_score(straight.stdout)
    summaries = [store.read_json(d / "modes-2d" / "dynamic-k2" / store.SUMMARY_FILE) for d in
                 (tmp_path / "split", tmp_path / "straight")]
    assert summaries[0]["scores"] == summaries[1]["scores"]
    assert summaries[1]["scores"][0] == pytest.approx(straight_logs["eval_score"].values[0].mean(), rel=1e-12)

    tables = {name: read_results(tmp_path / name) for name in ("split", "straight")}
    split_row, straight_row = (tables[name].scores.iloc[0] for name in ("split", "straight"))
    assert split_row.score == straight_row.score == summaries[1]["scores"][0]
    assert (split_row.evaluations, split_row.last_eval_step, split_row.uncounted_evaluations) == (3, 60, 1)
    assert straight_row.uncounted_evaluations == 0
    results = tables["split"]
    steps, _ = eval_curves(results.logs, score_matrix(results.scores, "dynamic", 2, results.tasks))
    assert steps.tolist() == [20, 40, 60]

    # A log written before the marker existed is scored by the same rule, from its config.json.
    store.write_store(split_dir, store.LOG_STORE, store.read_store(split_dir).drop_vars("eval_counted"))
    assert read_results(tmp_path / "split").scores.iloc[0].score == straight_row.score


def test_the_protocol_counts_the_final_schedule_only():
    steps = np.array([100, 150, 200, 250, 300])
    counted = scoring.counted_evaluations(steps, 100, 250)
    assert counted.tolist() == [True, False, True, True, True]
    scores = np.array([[0.1, 0.9, 0.2, 0.3, 0.4], [np.nan, 0.9, 0.2, 0.3, 0.4]])
    np.testing.assert_allclose(scoring.run_scores(scores, counted, np.array([False, True])), [0.3, np.nan])
    assert scoring.scored_evaluations(scores, counted, np.array([False, True])).tolist() == [3, 0]
    few = np.array([[0.1, 0.9, np.nan, np.nan, np.nan]])  # (a run that made 2 evaluations, one off the schedule)
    assert scoring.scored_evaluations(few, counted, np.array([False])).tolist() == [1]


def fill_commands(results) -> list[str]:
    """The `drol-diag sweep` commands the report's sections print for `results` (reports.text.fill_command
    with each kind of addition a section asks for: the same grid, another ablation, more K, more seeds)."""
    from reports.text import fill_command

    return [fill_command(results), fill_command(results, ablations=results.ablations + ["static-routing"]),
            fill_command(results, ks=[2, 4]), fill_command(results, seeds="0-4")]


def planned(command: str):
    """The sweep planner's plan for a `drol-diag sweep ...` command line, made as `drol-diag sweep` makes it
    (its options parsed by the command itself; the plan, without the --dry-run time estimate)."""
    import typer

    from ablations import grid
    from ablations import sweep as sweeps
    from cli import app
    from drol_diag.settings.options import OPTIONS

    words = shlex.split(command)
    assert words[:2] == ["drol-diag", "sweep"], command
    sweep_command = typer.main.get_command(app).commands["sweep"]
    params = sweep_command.make_context("sweep", words[2:]).params
    settings = {name: params[name] for name in (option.grid or option.name for option in OPTIONS.values()
                                                if option.sweep)}  # (grid_settings: the sweep sets it from --grid)
    file_values = grid.read_sweep_file(params["from_file"]) if params["from_file"] else {}
    return sweeps.plan_sweep(grid.spec_from_values(file_values, settings), params["out"], force=params["force"])


def test_the_reports_fill_commands_are_accepted_by_the_sweep_after_a_run_was_extended(tmp_path):
    from ablations import grid
    from ablations import sweep as sweeps
    from drol_diag.runfolder import folders
    from reports.runs import read_results

    # A one-group sweep (its sweep.toml, and the group's run with the arguments the sweep gives it), then that
    # run extended by hand past the sweep file's steps.
    values = dict(tasks="modes-2d", ablations="dynamic", k="2", seeds="0", steps=20, hidden="16", batch_size=16,
                  log_interval=10, checkpoint_interval=10, eval_interval=20, eval_episodes=2, diagnostics=False)
    spec = grid.spec_from_values({}, values)
    out = tmp_path / "sweep"
    plan = sweeps.plan_sweep(spec, out)
    sweeps.start_sweep(plan)
    arguments = grid.run_arguments(spec, plan.groups[0].group, out)
    assert invoke("run", *arguments).exit_code == 0
    extended = invoke("run", *arguments, "--steps", "30", "--resume")
    assert extended.exit_code == 0, extended.output
    with pytest.raises(ValueError, match="more than this sweep's 20"):  # the sweep file alone is stale
        sweeps.plan_sweep(spec, out)

    commands = fill_commands(read_results(out))
    for command in commands:
        plan = planned(command)  # raises ValueError for a folder it would refuse
        states = {p.run_dir.name: p.state.kind for p in plan.groups}
        assert "--force" in shlex.split(command) or folders.CONFLICT not in states.values(), (command, states)
        assert states["dynamic-k2"] in (folders.FINISHED, folders.CONFLICT), (command, states)
    assert {"static-routing-k2", "dynamic-k4"} <= {p.run_dir.name for p in planned(commands[1]).groups} | \
        {p.run_dir.name for p in planned(commands[2]).groups}
