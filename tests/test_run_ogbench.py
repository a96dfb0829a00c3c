"""`drol-diag run` on OGBench tasks, from a tiny dataset in the official file format (the session's,
tests/conftest.py): DROL end to end with the family presets, evaluation in the real environment and
diagnostics; FQL's presets; bad dataset files."""

import json
import shutil

import numpy as np
import pytest
import xarray as xr

from tests.helpers import invoke


def test_bad_dataset_files_are_one_line_errors(tiny_cube_dataset, tmp_path):
    name = "cube-single-play-singletask-task1-v0"
    data = tmp_path / "data"
    out = tmp_path / "out"
    missing = invoke("run", "--task", name, "--dataset-dir", str(data), "--out", str(out))
    assert missing.exit_code == 2 and "cube-single-play-v0.npz" in missing.stderr and "generate" in missing.stderr
    data.mkdir()
    (data / "cube-single-play-v0.npz").write_bytes(b"not an npz at all")
    (data / "cube-single-play-v0-val.npz").write_bytes(b"not an npz at all")
    corrupt = invoke("run", "--task", name, "--dataset-dir", str(data), "--out", str(out))
    assert corrupt.exit_code == 2 and "bad OGBench dataset file" in corrupt.stderr
    assert len(corrupt.stderr.strip().splitlines()) == 1
    for file in ("cube-single-play-v0.npz", "cube-single-play-v0-val.npz"):  # a valid dataset, then one NaN
        shutil.copy(tiny_cube_dataset / file, data / file)
    with np.load(data / "cube-single-play-v0.npz") as f:
        arrays = dict(f)
    arrays["observations"][3, 2] = np.nan
    np.savez(data / "cube-single-play-v0.npz", **arrays)
    nan = invoke("run", "--task", name, "--dataset-dir", str(data), "--out", str(out))
    assert nan.exit_code == 2 and "NaN" in nan.stderr
    assert not out.exists()


@pytest.mark.parametrize("ablation, folder", [("dynamic", "dynamic-k16")])  # (static-routing's owner table and
# FQL's acting are the same on every task: tests/test_variants.py trains them on modes; FQL's OGBench presets:
# test_fql_takes_the_cube_presets below)
def test_ogbench_run_end_to_end_on_a_tiny_official_format_dataset(tiny_cube_dataset, tmp_path, ablation, folder):
    result = invoke("run", "--task", "cube-single-play-singletask-task2-v0", "--dataset-dir", str(tiny_cube_dataset),
                    "--ablation", ablation, "--profile", "smoke", "--steps", "40", "--log-interval", "20",
                    "--eval-interval", "20", "--eval-episodes", "1", "--seeds", "0,1", "--out", str(tmp_path / "out"),
                    "--no-progress")
    assert result.exit_code == 0, result.output
    assert "seed 1: score" in result.stdout and "updates/s" in result.stdout
    run_dir = tmp_path / "out" / "cube-single-play-singletask-task2-v0" / folder
    config = json.loads((run_dir / "config.json").read_text())
    assert config["learner"]["bc_coef"] == 10.0  # the cube-single-play preset
    evals = xr.open_zarr(run_dir / "logs.zarr", consolidated=False)
    assert list(evals.eval_step.values) == [20, 40]
    assert np.all((evals["eval_score"].values >= 0) & (evals["eval_score"].values <= 1))
    np.testing.assert_array_equal(evals["eval_success"].values, evals["eval_score"].values)
    assert np.all(evals["eval_length"].values <= 200)  # cube-single's time limit
    assert "eval_return" in evals
    assert evals["support_dist"].sizes["probe"] == min(1024, config["task"]["transitions"])  # M, capped at N
    assert "winner" in evals


def test_fql_takes_the_cube_presets():
    from drol_diag.settings import resolve

    learner, _ = resolve("cube-single-play-singletask-task2-v0", "smoke", ablation="fql")
    assert learner.alpha == 300.0 and not hasattr(learner, "bc_coef")
