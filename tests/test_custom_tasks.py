"""Your own data and tasks (drol_diag.tasks.custom): `--task npz:PATH` and `--task package.module:factory`
train through the CLI (with every diagnostic, and evaluation where the task has one); the npz rules
that derive next observations and masks; run folder names; every malformed input is one line, exit 2."""

from __future__ import annotations

import json
import sys
import textwrap
import zipfile
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import xarray as xr

from drol_diag.settings import resolve
from drol_diag.tasks import Task, load_task, task_folder_name, task_kind
from drol_diag.tasks.custom import task_from_factory_result
from reports.analysis import analyse
from reports.questions.truth import question_truth
from reports.runs import read_results
from tests.helpers import invoke
from tests.test_truth_diagnostics import TRUTH
from training.evaluation import NO_VISITED

ENV_ID = "InvertedDoublePendulum-v5"  # actions in [-1, 1], episodes end when the pendulum falls
FACTORY_MODULE = "drol_test_factory_task"  # written into the test's working directory
SMALL_RUN = ("--profile", "smoke", "--steps", "20", "--seeds", "0", "--log-interval", "10", "--eval-interval", "10",
             "--eval-episodes", "2", "--checkpoint-interval", "20", "--no-progress")


def pendulum_npz(path: Path, rows: int = 300) -> dict[str, np.ndarray]:
    """Random-action InvertedDoublePendulum-v5 data in the npz layout, with env_id; returns the arrays."""
    env = gymnasium.make(ENV_ID)
    rng = np.random.default_rng(0)
    observation, _ = env.reset(seed=0)
    columns: dict[str, list] = {key: [] for key in ("observations", "actions", "rewards", "terminals", "timeouts")}
    for _ in range(rows):
        action = rng.uniform(-1, 1, size=1).astype(np.float32)
        following, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(columns, (observation, action, reward, terminated, truncated)):
            columns[key].append(value)
        observation = env.reset()[0] if terminated or truncated else following
    arrays = {key: np.asarray(value) for key, value in columns.items()}
    np.savez(path, **arrays, env_id=np.array(ENV_ID))
    return arrays


@pytest.fixture(scope="module")
def npz_file(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("npz") / "pendulum.npz"
    return path, pendulum_npz(path)


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch):
    """The test's own working directory, sys.path restored afterwards (the factory loader adds the cwd)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [m for m in sys.modules if m.startswith(FACTORY_MODULE)]:
        monkeypatch.delitem(sys.modules, name)
    return tmp_path


def write_module(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source))


def test_npz_rules_derive_next_observations_and_masks(tmp_path):
    # Three episodes: rows 0-2 end in a terminal, rows 3-5 in a timeout, rows 6-7 run off the file's end.
    observations = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    terminals = np.array([0, 0, 1, 0, 0, 0, 0, 0])
    timeouts = np.array([0, 0, 0, 0, 0, 1, 0, 0])
    arrays = dict(observations=observations, actions=np.zeros((8, 1)), rewards=np.arange(8.0), terminals=terminals)
    np.savez(tmp_path / "a.npz", **arrays, timeouts=timeouts)
    data = load_task(f"npz:{tmp_path / 'a.npz'}").dataset
    kept = [0, 1, 2, 3, 4, 6]  # the timeout row (5) and the last row (7) have no known next observation
    np.testing.assert_array_equal(data["rewards"], kept)
    np.testing.assert_array_equal(data["next_observations"][:, 0], [1, 2, 2, 4, 5, 7])  # a terminal keeps its own
    np.testing.assert_array_equal(data["masks"], [1, 1, 0, 1, 1, 1])
    np.testing.assert_array_equal(data["episode_ends"], [0, 0, 1, 0, 0, 0])
    # Given next observations, every row is kept; given masks, they are used (a mask-1 terminal is dropped
    # without next observations: the target would bootstrap from an unknown state).
    np.savez(tmp_path / "b.npz", **arrays, next_observations=observations + 10)
    data = load_task(f"npz:{tmp_path / 'b.npz'}").dataset
    np.testing.assert_array_equal(data["next_observations"][:, 0], np.arange(8) + 10)
    np.testing.assert_array_equal(data["masks"], 1 - terminals)
    np.savez(tmp_path / "c.npz", **arrays, masks=np.ones(8))
    np.testing.assert_array_equal(load_task(f"npz:{tmp_path / 'c.npz'}").dataset["rewards"], [0, 1, 3, 4, 5, 6])


def test_npz_task_trains_through_the_cli_with_diagnostics_and_env_evaluation(npz_file, tmp_path):
    path, arrays = npz_file
    out = tmp_path / "runs"
    result = invoke("run", "--task", f"npz:{path}", *SMALL_RUN, "--probes", "32", "--out", str(out))
    assert result.exit_code == 0, result.output
    (folder,) = list(out.iterdir())
    assert folder.name.startswith("npz-pendulum-") and folder.name == task_folder_name(f"npz:{path}")
    run_dir = folder / "dynamic-k16"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["run"]["task"] == f"npz:{path}"
    ends = arrays["terminals"] | arrays["timeouts"]
    ends[-1] = True
    assert config["task"]["transitions"] == len(ends) - int((ends & ~arrays["terminals"]).sum())
    with xr.open_zarr((run_dir / "logs.zarr").resolve(), consolidated=False) as logs:
        assert {"flip_rate", "winner_data_dist", "grad_cos"} <= set(logs.data_vars)  # the diagnostics ran
        assert np.isfinite(logs.flip_rate.values[:, -1]).all()  # (the first row has no previous row to flip from)
        assert not set(TRUTH) & set(logs.data_vars)  # no ground truth in an npz file: none of its quantities
        # No reference scores in the file: the score is the mean return of gymnasium.make(env_id) episodes.
        np.testing.assert_array_equal(logs.eval_score.values, logs.eval_return.values)
        assert (logs.eval_length.values >= 1).all() and np.isfinite(logs.eval_score.values).all()
    # Nothing to hold the diagnostics against: the report's truth section says so, naming the tasks that have one.
    results = read_results(out)
    (paragraph,) = question_truth(results, analyse(results, reps=10)).blocks
    assert paragraph.text.startswith(f"None of these runs logged a ground truth (task: npz:{path})")
    assert "the modes, arc and cliff families" in paragraph.text  # where a truth can be had


def test_factory_task_trains_through_the_cli_and_logs_its_score(in_tmp_dir):
    write_module(in_tmp_dir, FACTORY_MODULE, """
        import numpy as np

        CALLS = []

        def make_task():
            rng = np.random.default_rng(0)
            observations = rng.normal(size=(256, 3)).astype(np.float32)
            actions = np.tanh(observations[:, :2])
            data = dict(observations=observations, actions=actions, rewards=-np.abs(actions).sum(1),
                        terminals=np.ones(256))

            def evaluate(policy):
                chosen = np.asarray(policy(observations[:5]))
                assert chosen.shape == (5, 2), chosen.shape
                CALLS.append(chosen)
                return 0.25 + 0.5 * len(CALLS) / 100  # 0.255 at the first call, 0.26 at the second

            return data, evaluate
        """)
    name = f"{FACTORY_MODULE}:make_task"
    out = in_tmp_dir / "runs"
    result = invoke("run", "--task", name, *SMALL_RUN, "--no-diagnostics", "--out", str(out))
    assert result.exit_code == 0, result.output
    run_dir = out / f"py-{FACTORY_MODULE}-make_task" / "dynamic-k16"
    assert json.loads((run_dir / "config.json").read_text())["run"]["task"] == name
    with xr.open_zarr((run_dir / "logs.zarr").resolve(), consolidated=False) as logs:
        np.testing.assert_allclose(logs.eval_score.values[0], [0.255, 0.26])
        assert not [name for name in logs.data_vars if name.startswith("mc_")]
    assert len(sys.modules[FACTORY_MODULE].CALLS) == 2
    assert result.stderr.count(NO_VISITED) == 1  # a score alone: no Monte-Carlo critic check, said once


def test_factory_return_forms_are_adapted():
    rng = np.random.default_rng(0)
    dataset = dict(observations=rng.normal(size=(10, 2)), actions=rng.uniform(-1, 1, (10, 1)), rewards=np.zeros(10),
                   masks=np.ones(10), next_observations=rng.normal(size=(10, 2)))
    policy = lambda obs: np.zeros((len(obs), 1))
    task_interface = lambda policy, num_episodes, seed: {"score": float(num_episodes + seed), "extra": 1.0}
    forms = [Task("x", dataset, evaluate=task_interface), dict(dataset=dataset, evaluate=task_interface),
             dict(dataset=dataset, validation=dataset, evaluate=lambda p: 7), (dataset, lambda p: np.float32(7)), dataset]
    scores = [task_from_factory_result(form, "m:f") for form in forms]
    assert all(t.name == "m:f" for t in scores)
    assert [t.evaluate(policy, 3, 4)["score"] if t.evaluate else None for t in scores] == [7.0, 7.0, 7, 7.0, None]
    assert scores[2].validation is not None and scores[0].dataset["actions"].dtype == np.float32
    assert task_kind("m:f") == "custom" and resolve("m:f", "auto")[0].actor_hidden == (512,) * 4
    with pytest.raises(ValueError, match="evaluate returned str; expected a number or a dict with 'score'"):
        task_from_factory_result((dataset, lambda p: "high"), "m:f").evaluate(policy, 1, 0)


def test_folder_names_are_safe_readable_and_distinct(tmp_path):
    first, second = f"npz:{tmp_path / 'a' / 'data.npz'}", f"npz:{tmp_path / 'b' / 'data.npz'}"
    assert task_folder_name(first).startswith("npz-data-") and task_folder_name(first) != task_folder_name(second)
    assert task_folder_name("examples.my_task:make_task") == "py-examples.my_task-make_task"
    assert task_folder_name("modes-2d") == "modes-2d"
    assert task_folder_name("cube-single-play-singletask-task2-v0") == "cube-single-play-singletask-task2-v0"


def bad_inputs(folder: Path) -> dict[str, tuple[str, str]]:
    """Malformed tasks: name -> (task, expected message part)."""
    good = dict(observations=np.zeros((4, 2)), actions=np.zeros((4, 1)), rewards=np.zeros(4), terminals=np.ones(4))
    np.savez(folder / "good.npz", **good)
    valid = (folder / "good.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(valid[: len(valid) // 2])
    (folder / "corrupt.npz").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    with zipfile.ZipFile(folder / "garbled.npz", "w") as archive:  # a zip whose member is not an npy array
        for key in good:
            archive.writestr(f"{key}.npy", b"not an array")
    (folder / "text.npz").write_text("observations,actions\n1,2\n")
    np.save(folder / "single.npy", np.zeros(3))
    np.savez(folder / "nokey.npz", **{k: v for k, v in good.items() if k != "terminals"})
    np.savez(folder / "rows.npz", **{**good, "rewards": np.zeros(5)})
    write_module(folder, f"{FACTORY_MODULE}_bad", """
        import numpy as np

        def raises():
            raise RuntimeError("no data today")

        def wrong():
            return 42

        def lacks():
            return {"observations": np.zeros((3, 2)), "actions": np.zeros((3, 1))}

        not_callable = 3
        """)
    module = f"{FACTORY_MODULE}_bad"
    return {
        "truncated npz": ("npz:truncated.npz", "bad npz task file truncated.npz"),
        "corrupt npz": ("npz:corrupt.npz", "bad npz task file corrupt.npz"),
        "garbled member": ("npz:garbled.npz", "bad npz task file garbled.npz"),
        "not an npz": ("npz:text.npz", "bad npz task file text.npz: not a readable npz archive"),
        "single array": ("npz:single.npy", "holds a single array, not an npz archive"),
        "missing file": ("npz:absent.npz", "npz task file absent.npz does not exist"),
        "missing key": ("npz:nokey.npz", "lacks terminals (has observations, actions, rewards)"),
        "mismatched rows": ("npz:rows.npz", "rewards has 5 rows but actions has 4"),
        "module missing": ("no_such_module_xyz:make", "module no_such_module_xyz not found"),
        "attribute missing": (f"{module}:absent", f"module {module} ("),
        "not callable": (f"{module}:not_callable", "is a int, not a function"),
        "factory raises": (f"{module}:raises", "the factory raised RuntimeError: no data today"),
        "wrong return": (f"{module}:wrong", "the factory returned int; expected a drol_diag.tasks.Task"),
        "factory lacks keys": (f"{module}:lacks", "lacks rewards, terminals"),
        "unknown name": ("cheetah-medium", "unknown task 'cheetah-medium'; valid: modes-2d"),
    }


def test_malformed_tasks_are_one_line_errors_with_exit_2(in_tmp_dir):
    for case, (task, expected) in bad_inputs(in_tmp_dir).items():
        out = in_tmp_dir / "runs"
        result = invoke("run", "--task", task, "--out", str(out))
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, (case, result.output)
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (case, lines)
        assert not out.exists(), case
    assert "has no attribute 'absent'" in invoke("run", "--task", f"{FACTORY_MODULE}_bad:absent").output
