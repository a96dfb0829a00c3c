"""Requests that cannot run end with one `error:` line, exit status 2 and nothing written (no traceback,
no hang): --out naming a file, a folder nothing can be made in or nothing, seeds or steps beyond int32, a
run (or its log) too large for the device's memory, inf and nan settings, report outputs nowhere writable,
empty list items, a dataset file that is not an npz archive. A batch or probe set larger than the training set is
allowed, said, and recorded as used. (More bad input: tests/test_run.py, test_sweep.py, test_custom_tasks.py.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from drol_diag.runfolder import folders, store
from drol_diag.runfolder.record import comparable, diagnostics_record
from drol_diag.settings import resolve
from tests.helpers import invoke
from training.memory import GIB, estimate_memory

TINY_RUN = ("--hidden", "8", "--k", "2", "--seeds", "0", "--steps", "4", "--log-interval", "4", "--eval-interval",
            "4", "--checkpoint-interval", "4", "--no-progress")
TINY_SWEEP = ("--tasks", "modes-2d", "--ablations", "dynamic", "--k", "2", "--seeds", "0", "--steps", "4",
              "--hidden", "8", "--no-progress")


def files_under(folder: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder (None) under `folder`: what a refused command must leave as it was."""
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
            for path in sorted(folder.rglob("*"))}


def assert_refused(result, phrase: str) -> str:
    """Exit status 2 and a single `error: ...` line on stderr holding `phrase`, no traceback; returns the line."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_out_naming_a_file_is_refused_by_run_and_sweep(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "modes-2d").write_text("a file where the task's folder goes")
    before = files_under(tmp_path)
    for command, arguments in (("run", TINY_RUN), ("sweep", TINY_SWEEP)):
        result = invoke(command, *arguments, "--out", str(tmp_path / "results"))
        assert_refused(result, f"{tmp_path / 'results'} is a file; give a folder")
        nested = invoke(command, *arguments, "--out", str(tmp_path / "runs"))
        assert_refused(nested, f"{tmp_path / 'runs' / 'modes-2d'} is a file")
    assert files_under(tmp_path) == before


def test_seeds_beyond_int32_or_too_many_are_refused(tmp_path):
    out = tmp_path / "out"
    assert_refused(invoke("run", *TINY_RUN, "--seeds", "0-99999999999999999999", "--out", str(out)),
                   "99999999999999999999 is too large; seeds are integers from 0 to 2147483647")
    assert_refused(invoke("run", *TINY_RUN, "--seeds", "2147483648", "--out", str(out)), "is too large")
    assert_refused(invoke("sweep", *TINY_SWEEP, "--seeds", "0-20000", "--out", str(out)),
                   "lists more than 10000 seeds")
    assert not out.exists()


def test_out_that_is_empty_or_where_no_folder_can_be_made_is_refused_by_run_and_sweep(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # (where an empty --out trained, in silence)
    for command, arguments in (("run", TINY_RUN), ("sweep", TINY_SWEEP)):
        # /proc takes no folder, even from root (for whom os.access says yes).
        assert_refused(invoke(command, *arguments, "--out", "/proc/x"),
                       "--out /proc/x: cannot make a folder in /proc (")
        for empty in ("", " "):
            assert_refused(invoke(command, *arguments, "--out", empty), "--out is empty; give a results folder")
    assert list(tmp_path.iterdir()) == []


def test_inf_and_nan_settings_are_refused_from_every_source(tmp_path):
    with pytest.raises(ValueError, match="lr must be a finite number, got inf"):  # (the Python API)
        resolve("modes-2d", lr=math.inf)
    out = tmp_path / "out"
    for option, value in (("--lr", "inf"), ("--bc-coef", "inf"), ("--bc-coef", "nan"), ("--tau", "-inf")):
        assert_refused(invoke("run", *TINY_RUN, option, value, "--out", str(out)),
                       f"{option} must be a finite number, got {value}")
    assert_refused(invoke("run", *TINY_RUN, "--ablation", "soft-routing", "--routing-temperature", "inf", "--out",
                          str(out)), "--routing-temperature must be a finite number")
    for axis, phrase in (("lr=inf", "--grid lr: --lr must be a finite number, got inf"),
                         ("bc_coef=1,nan", "--grid bc_coef: --bc-coef must be a finite number, got nan")):
        assert_refused(invoke("sweep", *TINY_SWEEP, "--grid", axis, "--out", str(out)), phrase)
    assert_refused(invoke("sweep", *TINY_SWEEP, "--executor", "ray", "--gpus-per-group", "inf", "--out", str(out)),
                   "--gpus-per-group must be a finite number")
    (tmp_path / "run.toml").write_text("lr = inf\n")
    assert_refused(invoke("run", *TINY_RUN, "--config", str(tmp_path / "run.toml"), "--out", str(out)),
                   "--lr must be a finite number")
    (tmp_path / "sweep.toml").write_text('tasks = "modes-2d"\nseeds = [0]\n[grid]\nlr = [1e-4, nan]\n')
    assert_refused(invoke("sweep", "--from", str(tmp_path / "sweep.toml"), "--out", str(out)),
                   "the sweep file's [grid] lr: --lr must be a finite number, got nan")
    assert not out.exists()


def test_steps_beyond_int32_or_a_log_beyond_memory_are_refused_before_anything_is_written(tmp_path):
    # The log's rows count in the estimate: modes-2d's 3 seeds take megabytes at 2500 updates, terabytes at 2^31.
    learner, run = resolve("modes-2d", seeds=(0, 1, 2))
    long_learner, long_run = resolve("modes-2d", seeds=(0, 1, 2), steps=2**31 - 1)
    assert estimate_memory(learner, 2, 2, 20000, 3, 1024, run).log < 0.1 * GIB
    assert estimate_memory(long_learner, 2, 2, 20000, 3, 1024, long_run).log > 1000 * GIB
    with pytest.raises(ValueError, match="--steps must be at most 2147483647"):
        resolve("modes-2d", steps=2**31)
    out = tmp_path / "out"
    for command, arguments in (("run", TINY_RUN), ("sweep", TINY_SWEEP)):
        assert_refused(invoke(command, *arguments, "--steps", "99999999999999999999", "--out", str(out)),
                       "--steps must be at most 2147483647 (the trainer counts updates in int32), got 9999")
        line = assert_refused(invoke(command, *arguments, "--steps", "2147483647", "--log-interval", "1", "--out",
                                     str(out)), "the run's log (every row is kept until the run ends) needs")
        assert "lower --steps" in line
    assert not out.exists()


def test_report_outputs_where_no_file_can_be_made_are_refused_before_the_runs_are_read(tmp_path):
    for option in ("--pdf", "--html"):
        path = f"/proc/r.{option[2:]}"
        made = invoke("report", str(tmp_path), option, path)
        *said, error = made.stderr.strip().splitlines()  # (report says first which folder it reads)
        assert made.exit_code == 2 and said == [f"reading runs under {tmp_path} ..."], made.output
        assert error.startswith(f"error: cannot write {path}: nothing can be made in folder /proc ("), made.output
    assert list(tmp_path.iterdir()) == []


def test_a_run_too_large_for_the_device_memory_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    line = assert_refused(invoke("run", "--k", "100000", "--no-progress", "--out", str(out)), "GiB of memory")
    # The estimate (hundreds of GiB), what the device has, the part too large and what to change.
    needed = float(line.split("needs about ")[1].split(" GiB")[0])
    assert needed > 200 and ("available on this host" in line or "free on" in line)
    assert "a row of probe diagnostics needs" in line and "--no-diagnostics" in line and "lower --k" in line
    line = assert_refused(invoke("run", "--k", "1000000", "--no-diagnostics", "--no-progress", "--out", str(out)),
                          "a training chunk needs")
    assert "probe" not in line and "--batch-size" in line
    assert_refused(invoke("sweep", *TINY_SWEEP, "--k", "2,1000000", "--hidden", "512", "--out", str(out)),
                   "group modes-2d dynamic K=1000000 (1 seed, batch 256) needs about")
    assert not out.exists()  # no config.json, no lock, no sweep.toml


def test_empty_list_items_are_refused_everywhere(tmp_path):
    out = tmp_path / "out"
    for option, value in (("--k", "2,,4"), ("--k", "2,"), ("--ablations", "dynamic,,fql"), ("--tasks", "modes-2d,"),
                          ("--seeds", "0,,1"), ("--hidden", "64,,8")):
        assert_refused(invoke("sweep", *TINY_SWEEP, option, value, "--out", str(out)),
                       f"malformed {option} {value!r}: an item is empty")
    for option in ("--hidden", "--actor-hidden", "--critic-hidden"):
        assert_refused(invoke("run", *TINY_RUN, option, "64,,abc", "--out", str(out)), "an item is empty")
    (tmp_path / "sweep.toml").write_text('tasks = ["modes-2d", ""]\nk = "2,,4"\n')
    assert_refused(invoke("sweep", "--from", str(tmp_path / "sweep.toml"), "--out", str(out)), "an item is empty")
    assert not out.exists()
    assert_refused(invoke("sweep", *TINY_SWEEP, "--tasks", "", "--out", str(out)), "empty grid: --tasks")


def test_a_dataset_file_that_is_not_an_npz_archive_never_suggests_loading_pickles(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "text.npz").write_text("observations,actions\n1,2\n")
    np.savez(tmp_path / "objects.npz", observations=np.array([{"a": 1}], dtype=object), actions=np.zeros((1, 1)),
             rewards=np.zeros(1), terminals=np.ones(1))
    ogbench = tmp_path / "ogbench"
    ogbench.mkdir()
    for name in ("cube-single-play-v0.npz", "cube-single-play-v0-val.npz"):
        (ogbench / name).write_text("not an archive")
    cases = {"npz:" + str(tmp_path / "text.npz"): "not a readable npz archive (a text file, not a zip archive)",
             "npz:" + str(tmp_path / "objects.npz"): "holds pickled Python objects, which drol-diag never loads",
             "cube-single-play-singletask-task2-v0": "is a text file, not an npz archive"}
    for task, phrase in cases.items():
        line = assert_refused(invoke("run", *TINY_RUN, "--task", task, "--dataset-dir", str(ogbench),
                                     "--out", str(out)), phrase)
        assert "allow_pickle" not in line and "pickle.load" not in line
    assert not out.exists()


def test_batch_and_probes_larger_than_the_training_set_are_said_and_recorded_as_used(tmp_path):
    rows = 40
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "small.npz", observations=rng.normal(size=(rows, 3)), actions=rng.uniform(-1, 1, (rows, 2)),
             rewards=rng.normal(size=rows), terminals=np.zeros(rows), next_observations=rng.normal(size=(rows, 3)))
    task, out = f"npz:{tmp_path / 'small.npz'}", tmp_path / "out"
    arguments = ("run", *TINY_RUN, "--task", task, "--batch-size", "64", "--probes", "100", "--out", str(out))
    result = invoke(*arguments)
    assert result.exit_code == 0, result.output
    assert (f"note: --batch-size 64 is larger than the training set ({rows} transitions); batches are drawn with "
            "replacement") in result.stderr
    (run_dir,) = [path.parent for path in out.rglob(store.CONFIG_FILE)]
    config = json.loads((run_dir / store.CONFIG_FILE).read_text())
    assert config["diagnostics"] == {"enabled": True, "probes": rows, "probes_requested": 100}
    with xr.open_zarr((run_dir / store.LOG_STORE).resolve(), consolidated=False) as logs:
        assert logs.sizes["probe"] == rows
    # What was asked for is what a resume and a sweep must match: both see this folder as theirs.
    asked = json.loads(json.dumps({**config, "diagnostics": diagnostics_record(True, 100)}))
    assert comparable(asked) == comparable(config)
    assert comparable({**asked, "diagnostics": diagnostics_record(True, 50)}) != comparable(config)
    learner, run = resolve(task, "auto", actor_hidden=(8,), critic_hidden=(8,), num_candidates=2, seeds=(0,), steps=4,
                           log_interval=4, eval_interval=4, checkpoint_interval=4, batch_size=64)
    expected = folders.settings_record(learner, run, diagnostics_record(True, 100))
    assert folders.folder_state(run_dir, expected, 4).kind == folders.FINISHED


def test_gpu_options_naming_no_gpu_or_out_of_range_are_refused(tmp_path, monkeypatch):
    # The GPUs a sweep finds come from CUDA_VISIBLE_DEVICES here (else nvidia-smi -L); JAX_PLATFORMS=cpu keeps
    # JAX off any GPU this machine may have, so that a GPU that exists is refused for that reason alone.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    out = tmp_path / "out"
    for options, phrase in ((("--gpus", "2"), "--gpus 2: no GPU 2 here; found 0,1 (from CUDA_VISIBLE_DEVICES)"),
                            (("--gpus", "0,x"), "malformed --gpus '0,x'; list GPU indices (non-negative integers)"),
                            (("--gpus", "-1"), "malformed --gpus '-1'"),
                            (("--gpus", "1,1"), "a GPU is listed twice"),
                            (("--gpus", "1"), "--gpus 1: JAX cannot use a GPU here: JAX_PLATFORMS=cpu leaves out cuda"),
                            (("--groups-per-gpu", "0"), "--groups-per-gpu must be a positive integer, got 0"),
                            (("--executor", "ray", "--gpus-per-group", "-0.5"), "--gpus-per-group must be >= 0"),
                            (("--gpus-per-group", "1"), "--gpus-per-group applies to the cluster executors"),
                            (("--executor", "ray", "--gpus", "0"), "--gpus applies to --executor local")):
        assert_refused(invoke("sweep", *TINY_SWEEP, *options, "--out", str(out)), phrase)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert_refused(invoke("sweep", *TINY_SWEEP, "--gpus", "0", "--out", str(out)),
                   "--gpus 0: no GPU found here (CUDA_VISIBLE_DEVICES='' hides every GPU)")
    (tmp_path / "sweep.toml").write_text('tasks = "modes-2d"\nseeds = [0]\ngroups-per-gpu = 0\n')
    assert_refused(invoke("sweep", "--from", str(tmp_path / "sweep.toml"), "--out", str(out)), "--groups-per-gpu must")
    assert invoke("run", *TINY_RUN, "--gpus", "0", "--out", str(out)).exit_code == 2  # (a sweep's option only)
    assert not out.exists()
