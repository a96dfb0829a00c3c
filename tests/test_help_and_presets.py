"""Help that shows every default, --version, `run --config FILE.toml`, the resume refusal that names
each differing setting, and the published presets (FQL's per-dataset alpha and critic settings, DROL's
two columns picked with --preset)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from importlib.metadata import version

import pytest

from ablations import grid
from drol_diag.runfolder import folders, store
from drol_diag.settings import resolve
from drol_diag.settings.options import OPTIONS
from tests.helpers import invoke

# ------------------------------------------------------------------------------------------------
# Help and version


def commands(command, path=()):
    """(path, click command) of the command line's root and every command under it, groups included."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from commands(sub, (*path, name))


def help_entries(text: str) -> dict[str, str]:
    """{first flag or argument name: its whole help text, whitespace removed} of a plain click help page
    (entries under 'Options:' and 'Arguments:', continuation lines joined)."""
    entries: dict[str, str] = {}
    current = None
    in_section = False
    for line in text.splitlines():
        if re.fullmatch(r"(Options|Arguments):", line):
            in_section, current = True, None
        elif not line.strip():
            in_section, current = False, None
        elif in_section and re.match(r"  \S", line):  # an entry: its flags, two spaces, its help
            flags, *description = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            current = flags.split()[0]
            entries[current] = "".join("".join(description).split())
        elif in_section and current is not None:
            entries[current] += "".join(line.split())
    return entries


def shown_default(param, declared) -> str:
    """The default text a parameter's help must hold, without whitespace."""
    if declared is not None:
        return f"(default:{''.join(declared.shown_default.split())})"
    if getattr(param, "required", False):
        return "[required]"
    if param.default is None:
        return "(default:"
    if getattr(param, "is_flag", False) and param.secondary_opts:
        return f"[default:{(param.opts if param.default else param.secondary_opts)[0][2:]}]"
    return f"[default:{''.join(str(param.default).split())}]"


def test_every_option_of_every_command_shows_its_whole_help_and_default():
    import typer

    from cli import app

    declared_by_name = {**{o.name: o for o in OPTIONS.values()}, **{o.grid: o for o in OPTIONS.values() if o.grid}}
    checked = 0
    for path, command in commands(typer.main.get_command(app)):
        result = invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        entries = help_entries(result.stdout)
        for param in command.params:
            if getattr(param, "is_flag", False) and not param.secondary_opts and param.default is False:
                continue  # --help, --version: off unless given
            key = param.opts[0] if param.param_type_name == "option" else param.name
            where = f"drol-diag {' '.join(path)} {key}"
            assert key in entries, f"{where} is missing from --help:\n{result.stdout}"
            assert "".join((param.help or "").split()) in entries[key], f"{where}: help text cut:\n{result.stdout}"
            declared = declared_by_name.get(param.name) if path in (("run",), ("sweep",)) else None
            default = shown_default(param, declared)
            assert default in entries[key], f"{where}: {default!r} not in its help {entries[key]!r}"
            assert not entries[key].endswith("(default:)"), where
            checked += 1
    assert checked >= 2 * len(OPTIONS) + 10  # run and sweep each have every declared option, beside the others'


def console(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The console entry point cli.main on `args`, in this process: (exit status, stdout, stderr).
    The environment variables it sets for a new process are put back afterwards."""
    from cli import main

    for name in ("XLA_FLAGS", "MUJOCO_GL"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    monkeypatch.setattr(sys, "argv", ["drol-diag", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_version_prints_the_installed_version_and_exits_zero(monkeypatch, capsys):
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"drol-diag {version('drol-diag')}"
    assert "--version" in invoke("--help").stdout
    assert console(monkeypatch, capsys, "--version") == (0, result.stdout, "")
    # No arguments: the plain help on stdout and exit status 2, as before the help went plain (no "error:" line).
    code, out, err = console(monkeypatch, capsys)
    assert code == 2 and out.startswith("Usage: drol-diag") and "Commands:" in out and err == ""


# ------------------------------------------------------------------------------------------------
# run --config FILE.toml, and the resume refusal


@pytest.fixture(scope="module")
def config_run(tmp_path_factory):
    """A tiny run whose settings come from a TOML file (keys spelt as flags, dashes or underscores), with
    --k given on the command line too: (output folder, settings file, the CliRunner result)."""
    folder = tmp_path_factory.mktemp("config-run")
    settings = folder / "run.toml"
    settings.write_text('task = "modes-2d"\nk = 2\nseeds = "0"\nsteps = 20\nhidden = [32, 32]\nbatch-size = 64\n'
                        'log_interval = 10\neval-interval = 20\neval-episodes = 1\nprobes = 32\nbc-coef = 0.7\n'
                        'preset = "k16"\ndiagnostics = false\n')  # (no probe diagnostics to compile: a faster run)
    out = folder / "out"
    result = invoke("run", "--config", str(settings), "--k", "4", "--out", str(out), "--no-progress")
    return out, settings, result


def test_run_config_file_gives_the_settings_and_the_command_line_overrides_it(config_run):
    out, _, result = config_run
    assert result.exit_code == 0, result.output
    run_dir = out / "modes-2d" / "dynamic-k4"  # --k 4 from the command line beat the file's k = 2
    assert not (out / "modes-2d" / "dynamic-k2").exists()
    config = json.loads((run_dir / store.CONFIG_FILE).read_text())
    learner, run = config["learner"], config["run"]
    assert (learner["num_candidates"], learner["bc_coef"], learner["batch_size"]) == (4, 0.7, 64)
    assert learner["actor_hidden"] == learner["critic_hidden"] == [32, 32]
    assert (run["steps"], run["seeds"], run["log_interval"], run["eval_interval"]) == (20, [0], 10, 20)
    assert run["preset"] == "k16" and config["diagnostics"] == {"enabled": False, "probes": 32}


@pytest.mark.parametrize("text, expected", [
    ("bogus = 1\n", "unknown setting 'bogus'"),
    ('steps = "many"\n', "steps must be an int, got 'many'"),
    ("k = 2\nnum_candidates = 4\n", "sets k twice"),
    ("steps = [1\n", "is not valid TOML"),
    (None, "cannot read settings file"),
])
def test_run_config_file_errors_are_one_line_and_write_nothing(tmp_path, text, expected):
    settings = tmp_path / "run.toml"
    if text is not None:
        settings.write_text(text)
    result = invoke("run", "--config", str(settings), "--out", str(tmp_path / "out"), "--no-progress")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr and str(settings) in result.stderr
    assert not (tmp_path / "out").exists()


def test_resume_with_other_settings_names_each_setting_with_both_values(config_run):
    out, settings, first = config_run
    assert first.exit_code == 0, first.output
    config_path = out / "modes-2d" / "dynamic-k4" / store.CONFIG_FILE
    before = config_path.read_bytes()
    result = invoke("run", "--config", str(settings), "--k", "4", "--bc-coef", "0.5", "--lr", "0.001",
                    "--probes", "16", "--out", str(out), "--no-progress", "--resume")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    for difference in ("learner.bc_coef: 0.7 (run folder) vs 0.5 (this command)",
                       "learner.lr: 0.0003 (run folder) vs 0.001 (this command)",
                       "diagnostics.probes: 32 (run folder) vs 16 (this command)"):
        assert difference in result.stderr, result.stderr
    assert "learner.batch_size" not in result.stderr  # only what differs
    assert config_path.read_bytes() == before


def test_sweep_conflict_names_each_setting_with_both_values(tmp_path):
    learner, run = resolve("modes-2d", "auto", bc_coef=0.5, seeds=(0, 1))
    diagnostics = {"enabled": True, "probes": 64}
    record = {"learner": dataclasses.asdict(learner), "run": dataclasses.asdict(run), "diagnostics": diagnostics}
    store.write_json_atomic(tmp_path / store.CONFIG_FILE, record)
    expected_learner, expected_run = resolve("modes-2d", "auto", seeds=(0, 1), eval_interval=250)
    state = folders.folder_state(tmp_path, folders.settings_record(expected_learner, expected_run, diagnostics),
                                 expected_run.steps)
    assert state.kind == folders.CONFLICT
    assert "learner.bc_coef: 0.5 (run folder) vs 1.0 (this sweep)" in state.detail
    assert "eval_interval: 500 (run folder) vs 250 (this sweep)" in state.detail


# ------------------------------------------------------------------------------------------------
# Published presets (docs/drol-spec.md section 5)

# FQL on D4RL Adroit: alpha per dataset, all with q_agg min (README.md of seohongpark/fql).
FQL_ADROIT_ALPHA = {
    "pen-human": 10000, "pen-cloned": 10000, "pen-expert": 3000,
    "door-human": 30000, "door-cloned": 30000, "door-expert": 30000,
    "hammer-human": 30000, "hammer-cloned": 10000, "hammer-expert": 30000,
    "relocate-human": 10000, "relocate-cloned": 30000, "relocate-expert": 30000,
}


@pytest.mark.parametrize("dataset", sorted(FQL_ADROIT_ALPHA))
def test_fql_on_d4rl_adroit_takes_the_alpha_of_its_dataset(dataset):
    env, kind = dataset.split("-")
    for task in (f"{dataset}-v1", f"D4RL/{env}/{kind}-v2"):  # the D4RL name and its Minari id
        learner, _ = resolve(task, "paper", ablation="fql")
        assert (learner.alpha, learner.q_agg, learner.discount) == (FQL_ADROIT_ALPHA[dataset], "min", 0.99), task


def test_fql_on_antmaze_large_navigate_keeps_its_own_discount():
    task = "antmaze-large-navigate-singletask-task3-v0"
    fql, _ = resolve(task, "paper", ablation="fql")
    assert (fql.discount, fql.q_agg, fql.alpha) == (0.99, "min", 10.0)
    drol, _ = resolve(task, "paper")
    assert (drol.discount, drol.q_agg) == (0.995, "min")  # DROL's own setting there is unchanged
    giant, _ = resolve("antmaze-giant-navigate-singletask-task1-v0", "paper", ablation="fql")
    assert (giant.discount, giant.q_agg, giant.alpha) == (0.995, "min", 10.0)  # FQL passes 0.995 there


@pytest.mark.parametrize("task", ["antmaze-large-play-v2", "antmaze-large-diverse-v2", "D4RL/antmaze/large-play-v1"])
def test_drol_on_d4rl_antmaze_large_takes_the_column_the_preset_names(task):
    default, default_run = resolve(task, "paper")
    tuned, tuned_run = resolve(task, "paper", preset="tuned")
    k16, k16_run = resolve(task, "paper", preset="k16")
    assert (default.bc_coef, default.num_candidates, default_run.preset) == (0.03, 16, "tuned")  # as before
    assert (tuned, tuned_run) == (default, default_run)
    assert (k16.bc_coef, k16.num_candidates, k16_run.preset) == (0.1, 16, "k16")
    assert dataclasses.replace(k16, bc_coef=0.03) == tuned  # nothing else differs


def test_the_k16_preset_sets_k_16_and_keeps_the_other_family_settings():
    for task, tuned_k in (("cube-double-play-singletask-task2-v0", 64), ("antmaze-medium-play-v2", 32),
                          ("relocate-cloned-v1", 32)):
        tuned, _ = resolve(task, "paper")
        k16, _ = resolve(task, "paper", preset="k16")
        assert (tuned.num_candidates, k16.num_candidates) == (tuned_k, 16), task
        assert dataclasses.replace(k16, num_candidates=tuned_k) == tuned, task
    assert resolve("modes-2d", preset="k16")[0] == resolve("modes-2d")[0]  # no family: no difference
    assert resolve("antmaze-large-play-v2", ablation="fql", preset="k16")[0].alpha == 3.0  # fql: no column
    with pytest.raises(ValueError, match="unknown preset 'best'; valid: tuned .*k16"):
        resolve("modes-2d", preset="best")
    bad = invoke("run", "--preset", "best", "--steps", "1")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: unknown preset 'best'")


def test_sweeps_pass_the_preset_to_every_group(tmp_path):
    spec = grid.spec_from_values({"tasks": ["antmaze-large-play-v2"], "preset": "k16"}, {})
    (group,) = grid.expand(spec)
    arguments = grid.run_arguments(spec, group, tmp_path)
    assert arguments[arguments.index("--preset") + 1] == "k16"
    learner, run = grid.resolve_group(spec, group)
    assert (learner.bc_coef, run.preset) == (0.1, "k16")
    assert "--preset" not in grid.run_arguments(grid.spec_from_values({}, {}), grid.Group("modes-2d", "dynamic",
                                                                                          None, (0,)), tmp_path)
