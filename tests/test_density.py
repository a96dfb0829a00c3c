"""The learned behaviour density (diagnostics.density): a fit recovers a known conditional density, the cache is
keyed by the data and the fit's settings (a second run fits nothing), and bad input (too few rows, a fit that
diverges, a corrupt, foreign or other dataset's cache file) is one line, exit status 2, nothing half-written.
Its calibration against the truth on real runs is in tests/test_calibration.py."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading

import numpy as np
import pytest
import xarray as xr
from scipy.stats import norm, spearmanr

from diagnostics.density import (
    DensityError,
    DensitySettings,
    cache_folder,
    cache_path,
    cached_density,
    dataset_key,
)
from drol_diag.runfolder import store
from tests.helpers import invoke
from tests.test_bad_input import assert_refused

FAST = DensitySettings(steps=400)  # enough for a Gaussian with a linear mean


def gaussian_data(rows: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """a ~ N(W s, 0.1^2 I) with s ~ N(0, I) in 3 dims, a in 2: the data and W."""
    rng = np.random.default_rng(seed)
    weights = np.array([[0.3, -0.2, 0.1], [0.0, 0.25, -0.3]])
    states = rng.normal(size=(rows, 3))
    actions = states @ weights.T + 0.1 * rng.normal(size=(rows, 2))
    return {"observations": states.astype(np.float32), "actions": actions.astype(np.float32)}, weights


def true_logp(data: dict[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
    return norm.logpdf(data["actions"], data["observations"] @ weights.T, 0.1).sum(-1)


@pytest.fixture(scope="module")
def gaussian_fit(tmp_path_factory):
    train, weights = gaussian_data(4096, 0)
    held_out, _ = gaussian_data(1024, 1)
    folder = tmp_path_factory.mktemp("cache")
    density, fitted = cached_density(train, held_out, FAST, folder)
    assert fitted
    return density, train, held_out, weights, folder


def test_the_fit_recovers_a_known_conditional_density_on_and_off_the_data(gaussian_fit):
    density, _, held_out, weights, _ = gaussian_fit
    truth = true_logp(held_out, weights)
    assert density.heldout_logp_per_dim == pytest.approx(truth.mean() / 2, abs=0.1)
    assert density.heldout_rows == 1024 and density.fit_seconds > 0
    # Actions pushed off the data by growing amounts: the estimate orders them as the truth does.
    rng = np.random.default_rng(2)
    moved = {"observations": held_out["observations"],
             "actions": held_out["actions"] + rng.uniform(0, 0.5, (1024, 1)) * rng.normal(size=(1024, 2))}
    assert spearmanr(density.log_prob(moved["observations"], moved["actions"]),
                     true_logp(moved, weights)).statistic > 0.95


def test_fits_of_the_same_data_started_together_fit_once(tmp_path):
    """A sweep's groups start together: the one that takes the cache's lock fits, the other waits and reads."""
    train, _ = gaussian_data(2048, 2)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cached_density(train, None, FAST, tmp_path)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert sorted(fitted for _, fitted in results) == [False, True]
    assert results[0][0].key == results[1][0].key and results[0][0].fit_seconds == results[1][0].fit_seconds


def test_a_second_fit_of_the_same_data_and_settings_reads_the_cache(gaussian_fit):
    density, train, held_out, _, folder = gaussian_fit
    again, fitted = cached_density(train, held_out, FAST, folder)
    assert not fitted and again.key == density.key and again.fit_seconds == density.fit_seconds
    np.testing.assert_array_equal(again.log_prob(held_out["observations"], held_out["actions"]),
                                  density.log_prob(held_out["observations"], held_out["actions"]))
    assert [p.name for p in folder.iterdir()] == [cache_path(folder, density.key).name]  # no temporary or lock left
    # Another dataset, or other settings, is another key.
    other, _ = gaussian_data(4096, 5)
    assert dataset_key(other, FAST) != density.key
    assert dataset_key(train, dataclasses.replace(FAST, steps=401)) != density.key


def test_too_few_rows_and_a_diverging_fit_are_one_line_errors_and_write_nothing(tmp_path):
    small, _ = gaussian_data(100, 0)
    with pytest.raises(DensityError, match=r"the dataset has 100 transitions; the behaviour density fit needs at "
                                           r"least 1,024"):
        cached_density(small, None, FAST, tmp_path)
    data, _ = gaussian_data(2048, 0)
    with pytest.raises(DensityError, match=r"the behaviour density fit diverged \(loss not finite at update"):
        cached_density(data, None, dataclasses.replace(FAST, learning_rate=1e12), tmp_path)
    assert list(tmp_path.iterdir()) == []


def write_npz(path, rows: int, seed: int) -> str:
    data, _ = gaussian_data(rows, seed)
    np.savez(path, **data, rewards=np.zeros(rows), terminals=np.zeros(rows), next_observations=data["observations"])
    return f"npz:{path}"


def test_density_fit_fits_once_then_shows_the_cache_and_refuses_bad_cache_files(tmp_path, monkeypatch):
    monkeypatch.setenv("DROL_DIAG_DENSITY_CACHE", str(tmp_path / "cache"))
    task = write_npz(tmp_path / "data.npz", 2048, 0)
    first = invoke("density", "fit", task, "--no-progress")
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("fitted: held-out log-likelihood ") and "nats per action dim (2,048 pairs)" in \
        first.stdout
    (path,) = (tmp_path / "cache").iterdir()
    assert f"cache: {path}" in first.stdout
    second = invoke("density", "fit", task, "--no-progress")
    assert second.exit_code == 0 and second.stdout.startswith("cached: ")
    assert second.stdout.splitlines()[0][len("cached: "):] == first.stdout.splitlines()[0][len("fitted: "):]

    valid = path.read_bytes()

    def rewrite(arrays: dict) -> None:
        np.savez(tmp_path / "rewritten.npz", **arrays)
        shutil.move(tmp_path / "rewritten.npz", path)

    with np.load(path) as stored:
        other_key = {**dict(stored), "header": np.asarray(json.dumps({**json.loads(str(stored["header"])),
                                                                      "key": "0" * 24}))}
    cases = {"is not a readable behaviour density cache": lambda: path.write_bytes(b"not a zip file"),
             "is not a drol-diag behaviour density cache": lambda: rewrite({"weights": np.zeros(3)}),
             "holds the density of another dataset or fit": lambda: rewrite(other_key)}  # another data's valid cache
    for phrase, spoil in cases.items():
        path.write_bytes(valid)
        spoil()
        line = assert_refused(invoke("density", "fit", task, "--no-progress"), phrase)
        assert f"delete {path} and fit again" in line
    # A run reading that cache refuses alike, before its run folder exists.
    line = assert_refused(invoke("run", "--task", task, "--steps", "10", "--log-interval", "10", "--eval-interval",
                                 "10", "--hidden", "8", "--seeds", "0", "--out", str(tmp_path / "runs"),
                                 "--no-progress"), "holds the density of another dataset")
    assert not (tmp_path / "runs").exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [path.name]


def test_runs_record_their_density_or_why_they_have_none(tmp_path, monkeypatch):
    monkeypatch.setenv("DROL_DIAG_DENSITY_CACHE", str(tmp_path / "cache"))
    small = write_npz(tmp_path / "small.npz", 300, 0)
    arguments = ("--steps", "10", "--log-interval", "10", "--eval-interval", "10", "--hidden", "8", "--seeds", "0",
                 "--probes", "16", "--no-progress")
    for task, extra, recorded in ((small, (), {"off": "the dataset has 300 transitions; the fit needs at least 1,024"}),
                                  (small, ("--density", "off"), {"off": "--density off"})):
        out = tmp_path / f"runs{len(extra)}"
        result = invoke("run", "--task", task, *arguments, *extra, "--out", str(out))
        assert result.exit_code == 0, result.output
        assert ("note: no behaviour density" in result.stderr) == (not extra)
        (config_path,) = out.rglob(store.CONFIG_FILE)
        config = json.loads(config_path.read_text())
        assert config["density"] == recorded
        (log,) = out.rglob(store.LOG_STORE)
        with xr.open_zarr(log.resolve(), consolidated=False) as logs:
            assert "density_ood_frac" not in logs and "ood_frac" in logs
    assert not (tmp_path / "cache").exists()
    assert_refused(invoke("run", "--task", small, *arguments, "--density", "on", "--out", str(tmp_path / "bad")),
                   "--density must be one of auto, off")
    assert cache_folder() == tmp_path / "cache"
    assert_refused(invoke("density", "fit", small, "--no-progress"), "the behaviour density fit needs at least 1,024")
