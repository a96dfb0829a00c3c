"""diagnostics.open_runs: a sweep of run folders as one lazy Dataset, outer-joined, bad runs skipped."""

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import matplotlib
import numpy as np
import pytest
import xarray as xr
import zarr

from diagnostics import open_runs
from diagnostics.runs import RunsError, SkippedRunWarning
from drol_diag.runfolder import store
from drol_diag.settings import resolve
from drol_diag.tasks import load_task
from tests.helpers import DROL_DIAG, WAIT_S, wait_until
from training.driver import OPTIMISE_FROM_UPDATES, train

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Two runs of modes-2d with two K values, two seed sets, two probe counts and different lengths:
# K=2 (seeds 0, 1; 32 probes) is a `drol-diag run` killed with SIGKILL after a few log rows, and
# K=4 (seeds 1, 2; 64 probes; steps 100, 200) is trained in this process meanwhile.
SEEDS = {2: [0, 1], 4: [1, 2]}
# The killed run's length: short of the runs whose training is compiled optimised (4x faster: it would finish
# sooner), and long enough (19 log rows) to be still running when the fixture has read its first few rows.
KILLED_RUN_STEPS = OPTIMISE_FROM_UPDATES - 1


@dataclass
class Sweep:
    out: Path  # <out>/modes-2d/dynamic-k2 and <out>/modes-2d/dynamic-k4
    opened_while_running: xr.Dataset  # open_runs of the K=2 run while it was still writing


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Sweep:
    out = tmp_path_factory.mktemp("sweep")
    killed_dir = out / "modes-2d" / "dynamic-k2"
    args = [DROL_DIAG, "run", "--steps", str(KILLED_RUN_STEPS), "--hidden", "16,16", "--batch-size", "32", "--k", "2",
            "--seeds", "0,1", "--probes", "32", "--log-interval", "100", "--eval-interval", "100000",
            "--checkpoint-interval", "100000", "--out", str(out), "--no-progress"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        learner, run = resolve("modes-2d", "auto", actor_hidden=(16, 16), critic_hidden=(16, 16), batch_size=32,
                               num_candidates=4, seeds=tuple(SEEDS[4]), steps=200, log_interval=100,
                               eval_interval=100, eval_episodes=5, checkpoint_interval=200, probes=64)
        train(load_task("modes-2d"), learner, run, out, progress=False)
        opened = wait_for_rows(killed_dir, 2)
        wait_for_rows(killed_dir, opened.sizes["step"] + 1)  # the store's link has moved on since
        assert process.poll() is None, f"the K=2 run finished its {KILLED_RUN_STEPS} updates before the kill"
    finally:
        with contextlib.suppress(ProcessLookupError):  # (gone already: the assertion above says why)
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return Sweep(out, opened)


def wait_for_rows(run_dir: Path, rows: int, timeout_s: float = WAIT_S) -> xr.Dataset:
    """open_runs(run_dir) once its store has at least `rows` steps."""
    opened = []

    def enough_rows() -> bool:
        if (run_dir / store.LOG_STORE).exists():
            opened[:] = [open_runs(run_dir)]
            return opened[0].sizes["step"] >= rows
        return False

    if not wait_until(enough_rows, timeout_s):
        pytest.fail(f"{run_dir} logged fewer than {rows} rows in {timeout_s} s")
    return opened[0]


def copy_run(source: Path, target: Path, **attrs) -> Path:
    """A copy of a run folder, its store's attrs updated with `attrs`."""
    shutil.copytree(source, target, symlinks=True)
    if attrs:
        zarr.open_group(target / store.LOG_STORE, mode="r+").attrs.update(attrs)
    return target


def test_runs_combine_along_task_ablation_k_with_nan_for_missing_combinations(sweep):
    ds = open_runs(sweep.out)
    assert ds.flip_rate.dims == ("task", "ablation", "k", "seed", "step")
    assert ds.winner.dims == ("task", "ablation", "k", "seed", "step", "probe")
    assert ds["load"].dims == ("task", "ablation", "k", "seed", "step", "candidate")  # ds.load is a method
    assert ds.grad_cos_layer.dims[-1] == "layer" and ds.winner_data_dist_quantiles.dims[-1] == "quantile"
    assert ds.eval_score.dims == ("task", "ablation", "k", "seed", "eval_step")
    assert ds.probe_index.dims == ("task", "ablation", "k", "seed", "probe")
    assert ds.support_dist_ref.dims == ("task", "ablation", "k", "reference")
    assert ds.ood_threshold.dims == ("task", "ablation", "k")
    assert list(ds.task.values) == ["modes-2d"] and list(ds.ablation.values) == ["dynamic"]
    assert list(ds.k.values) == [2, 4] and list(ds.seed.values) == [0, 1, 2]
    assert list(ds.candidate.values) == [0, 1, 2, 3] and list(ds.probe.values) == list(range(64))
    assert ds.sizes["step"] >= 3 and list(ds.step.values[:3]) == [100, 200, 300]  # the killed run went further
    assert isinstance(ds.flip_rate.data, da.Array) and isinstance(ds.winner.data, da.Array)  # lazy
    assert ds.attrs["format_version"] == store.FORMAT_VERSION and "task" not in ds.attrs
    assert ds.attrs["learner.bc_coef"] == 1.0  # the same in every run: kept

    one = ds.sel(task="modes-2d", ablation="dynamic")
    assert one.flip_rate.sel(k=2, seed=2).isnull().all() and one.flip_rate.sel(k=4, seed=0).isnull().all()
    assert one.flip_rate.sel(k=4, step=300).isnull().all()
    assert one["load"].sel(k=2, candidate=[2, 3]).isnull().all()
    assert one["load"].sel(k=2, candidate=[0, 1], seed=[0, 1]).notnull().all()
    assert one.winner.sel(k=2, probe=slice(32, None)).isnull().all()
    assert one.diverged.dtype == np.float64 and one.winner.dtype == np.float64  # bool, int: float with NaN
    for k, seeds in SEEDS.items():
        run_dir = sweep.out / "modes-2d" / f"dynamic-k{k}"
        assert one.run_dir.sel(k=k).item() == str(run_dir)
        assert one.git_commit.sel(k=k).item() == store.read_json(run_dir / "config.json")["git_commit"]
        logs = store.read_store(run_dir)
        mine = one.sel(k=k, seed=seeds, candidate=np.arange(k), probe=logs.probe, step=logs.step)
        mine = mine.isel(reference=slice(logs.sizes["reference"])).compute()
        for name, expected in logs.data_vars.items():
            np.testing.assert_array_equal(mine[name].transpose(*expected.dims).values,
                                          expected.values.astype(mine[name].dtype), err_msg=name)


def test_dims_are_the_same_for_one_run_one_task_and_the_whole_sweep(sweep):
    """k (and task, ablation) stay dims when every run shares one value: code written on one folder runs on the next."""
    whole = open_runs(sweep.out)  # K 2 and 4
    assert whole.sizes["k"] == 2
    for folder in (sweep.out / "modes-2d" / "dynamic-k4", sweep.out / "modes-2d"):
        part = open_runs(folder)
        assert set(part.data_vars) == set(whole.data_vars) and set(part.coords) == set(whole.coords)
        for name, variable in whole.variables.items():
            assert part[name].dims == variable.dims, name
        assert part.flip_rate.dims == ("task", "ablation", "k", "seed", "step")
    single = open_runs(sweep.out / "modes-2d" / "dynamic-k4")
    assert dict(single.sizes)["k"] == 1 and single.k.values.tolist() == [4]


def test_plotting_idiom_works_with_one_and_with_two_ablations_and_several_k(sweep, tmp_path):
    single = open_runs(sweep.out / "modes-2d" / "dynamic-k4")
    lines = single.flip_rate.sel(task="modes-2d", k=4).mean("seed").plot.line(x="step", hue="ablation")
    assert len(lines) == 1
    plt.close("all")

    copy_run(sweep.out / "modes-2d" / "dynamic-k4", tmp_path / "modes-2d" / "dynamic-k4")
    copy_run(sweep.out / "modes-2d" / "dynamic-k4", tmp_path / "modes-2d" / "other-k4", ablation="other")
    two = open_runs(tmp_path)
    assert list(two.ablation.values) == ["dynamic", "other"]
    lines = two.flip_rate.sel(task="modes-2d", k=4).mean("seed").plot.line(x="step", hue="ablation")
    assert len(lines) == 2
    np.testing.assert_array_equal(lines[0].get_ydata(), lines[1].get_ydata())  # same data, other label
    plt.close("all")

    several_k = open_runs(sweep.out)
    several_k.flip_rate.sel(task="modes-2d", k=4).mean("seed").plot.line(x="step", hue="ablation")
    grid = several_k.flip_rate.sel(task="modes-2d").mean("seed").plot.line(x="step", hue="ablation", col="k")
    assert grid.axs.size == 2  # one panel per K
    plt.close("all")


def test_a_path_without_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        open_runs(tmp_path / "missing")
    (tmp_path / "started" / "modes-2d" / "dynamic-k2").mkdir(parents=True)
    (tmp_path / "started" / "modes-2d" / "dynamic-k2" / "config.json").write_text("{}")  # nothing logged yet
    for path in (tmp_path, tmp_path / "started" / "modes-2d" / "dynamic-k2"):
        with pytest.raises(FileNotFoundError) as error:
            open_runs(path)
        message = str(error.value)
        assert str(path) in message and "config.json" in message and "logs.zarr" in message
        assert "\n" not in message


def test_other_format_version_is_an_error_alone_and_skipped_among_others(sweep, tmp_path):
    old = copy_run(sweep.out / "modes-2d" / "dynamic-k2", tmp_path / "modes-2d" / "dynamic-k2", format_version=0)
    with pytest.raises(RunsError) as error:
        open_runs(old)
    message = str(error.value)
    assert isinstance(error.value, ValueError) and "\n" not in message
    assert str(old) in message and "format_version 0" in message and f"format_version {store.FORMAT_VERSION}" in message

    copy_run(sweep.out / "modes-2d" / "dynamic-k4", tmp_path / "modes-2d" / "dynamic-k4")
    with pytest.warns(SkippedRunWarning, match=f"{old}.*format_version 0"):
        ds = open_runs(tmp_path)
    assert ds.k.item() == 4 and list(ds.seed.values) == [1, 2]


@pytest.mark.parametrize("damage", ["delete the store's zarr.json", "garbage in the store's zarr.json",
                                    "garbage in a variable's zarr.json"])
def test_a_corrupt_run_among_others_is_skipped_with_a_warning(sweep, tmp_path, damage):
    bad = copy_run(sweep.out / "modes-2d" / "dynamic-k2", tmp_path / "modes-2d" / "dynamic-k2")
    copy_run(sweep.out / "modes-2d" / "dynamic-k4", tmp_path / "modes-2d" / "dynamic-k4")
    metadata = {"delete the store's zarr.json": bad / store.LOG_STORE / "zarr.json",
                "garbage in the store's zarr.json": bad / store.LOG_STORE / "zarr.json",
                "garbage in a variable's zarr.json": bad / store.LOG_STORE / "flip_rate" / "zarr.json"}[damage]
    if damage.startswith("delete"):
        metadata.unlink()
    else:
        metadata.write_text('{"zarr_format": 3, "node_type": "array", "shape": [')

    with pytest.warns(SkippedRunWarning, match=str(bad)):
        ds = open_runs(tmp_path)
    assert ds.k.item() == 4 and np.isfinite(ds.critic_loss.values).all()
    with pytest.raises(RunsError, match=str(bad)) as error:
        open_runs(bad)
    assert "\n" not in str(error.value)


def test_two_folders_with_the_same_run_are_an_error(sweep, tmp_path):
    copy_run(sweep.out / "modes-2d" / "dynamic-k2", tmp_path / "a" / "modes-2d" / "dynamic-k2")
    copy_run(sweep.out / "modes-2d" / "dynamic-k2", tmp_path / "b" / "modes-2d" / "dynamic-k2")
    with pytest.raises(RunsError, match="both task=modes-2d, ablation=dynamic, K=2"):
        open_runs(tmp_path)
    assert open_runs(tmp_path / "a").k.item() == 2


def test_a_killed_run_opens_and_values_opened_while_it_ran_stay_readable(sweep):
    ds = open_runs(sweep.out / "modes-2d" / "dynamic-k2")  # SIGKILLed by the fixture
    steps = ds.step.values
    assert steps[0] == 100 and np.all(np.diff(steps) == 100) and ds.sizes["seed"] == 2
    assert np.isfinite(ds.critic_loss.values).all()
    early = sweep.opened_while_running  # opened before the run's last flushes and its kill
    assert early.sizes["step"] < ds.sizes["step"]
    xr.testing.assert_identical(ds.sel(step=early.step).compute(), early.compute())
