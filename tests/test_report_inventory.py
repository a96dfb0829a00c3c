"""Every run folder is read or accounted for: `drol-diag report` and `diagnostics.open_runs` on a copy of the
session's small sweep (tests/conftest.py: modes-2d, dynamic and static-routing, K 2 and 4, 3 seeds) with run
folders broken in each way a folder can be unreadable; and the stores' consolidated metadata."""

import json
import os
import re
import shutil
import subprocess
import warnings
from html import unescape
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from diagnostics import open_runs
from diagnostics.runs import SkippedRunWarning
from drol_diag.runfolder import store
from drol_diag.runfolder.folders import missing_chunks
from tests.helpers import SMALL_SWEEP_GROUPS, invoke

REPS = 100  # bootstrap repetitions (the default is 2000)
OUTPUTS = ("report.html", "report.pdf", "scores.csv", "report.json")

# The copy's run folders under modes-2d/: how each is broken, and what its reason must say.
DANGLING = "dynamic-k2"  # logs.zarr is a link to a store version that was deleted
BAD_METADATA = "dynamic-k4"  # the store's zarr.json is cut short
BAD_CHUNK = "static-routing-k2"  # a data chunk holds garbage (its metadata is fine)
BAD_CONFIG = "static-routing-k8"  # a copy of static-routing-k4 relabelled K=8 whose config.json is garbage
NOT_LOGGED = "dynamic-k16"  # config.json only: a run that has not logged yet
MISSING_CHUNK = "static-routing-k16"  # a copy of static-routing-k4 relabelled K=16, a chunk file deleted
GOOD = "static-routing-k4"
LOST_CHUNK = ("eval_score", "0.2")  # the last evaluation (zarr would read NaN: the score would change in silence)
REASONS = {DANGLING: r"its logs\.zarr is a link to \.versions/logs\.zarr\.\w+, which does not exist",
           BAD_METADATA: r"cannot read its logs\.zarr: JSONDecodeError",
           BAD_CHUNK: r"cannot read the values of critic_loss in its logs\.zarr: \w+Error: .*(Zstd|decompress)",
           BAD_CONFIG: r"cannot read its config\.json: JSONDecodeError",
           NOT_LOGGED: r"no logs\.zarr: nothing logged yet",
           MISSING_CHUNK: r"its logs\.zarr lacks 1 of 3 chunks of eval_score \(0\.2\): deleted or not yet copied; "
                          r"re-run it or restore the folder"}
WOULD_BE = {DANGLING: ("dynamic", 2), BAD_METADATA: ("dynamic", 4), BAD_CHUNK: ("static-routing", 2),
            BAD_CONFIG: ("static-routing", 8), NOT_LOGGED: ("dynamic", 16), MISSING_CHUNK: ("static-routing", 16)}


def copy_sweep(small_sweep: Path, target: Path) -> Path:
    shutil.copytree(small_sweep, target, symlinks=True)
    assert sorted(f"modes-2d/{p.name}" for p in (target / "modes-2d").iterdir() if p.is_dir()) \
        == sorted(SMALL_SWEEP_GROUPS)
    return target


def break_dangling(run_dir: Path) -> None:
    """Delete the store version the run's logs.zarr link points to."""
    link = run_dir / store.LOG_STORE
    shutil.rmtree(run_dir / os.readlink(link))
    assert link.is_symlink() and not link.exists()


def delete_chunk(run_dir: Path, array: str, chunk: str) -> None:
    """Delete one chunk file of the run's store (its metadata still says the chunk is there)."""
    path = run_dir / store.LOG_STORE / array / chunk
    assert path.is_file()
    path.unlink()


def copy_relabelled(runs: Path, source: str, target: str, k: int) -> Path:
    """A copy of run folder `source` as `target`, its store attrs and config.json saying K=`k`."""
    shutil.copytree(runs / source, runs / target, symlinks=True)
    zarr.open_group(runs / target / store.LOG_STORE, mode="r+").attrs.update(num_candidates=k)
    config = json.loads((runs / target / store.CONFIG_FILE).read_text())
    config["learner"]["num_candidates"] = k
    (runs / target / store.CONFIG_FILE).write_text(json.dumps(config))
    return runs / target


@pytest.fixture(scope="module")
def broken(small_sweep, tmp_path_factory) -> Path:
    """A copy of the small sweep with one run folder left readable and six that are not (see above)."""
    out = copy_sweep(small_sweep, tmp_path_factory.mktemp("inventory") / "runs")
    runs = out / "modes-2d"
    break_dangling(runs / DANGLING)
    (runs / BAD_METADATA / store.LOG_STORE / "zarr.json").write_text('{"zarr_format": 3, "node_type": "gr')
    chunk = runs / BAD_CHUNK / store.LOG_STORE / "critic_loss" / "0.1"
    assert chunk.is_file()
    chunk.unlink()  # (a new file, whatever else links to the old one)
    chunk.write_bytes(b"not a zstd frame" * 4)
    copy_relabelled(runs, GOOD, BAD_CONFIG, 8)
    (runs / BAD_CONFIG / store.CONFIG_FILE).write_text("{not json")
    delete_chunk(copy_relabelled(runs, GOOD, MISSING_CHUNK, 16), *LOST_CHUNK)
    (runs / NOT_LOGGED).mkdir()
    config = json.loads((runs / DANGLING / store.CONFIG_FILE).read_text())
    config["learner"]["num_candidates"] = 16
    (runs / NOT_LOGGED / store.CONFIG_FILE).write_text(json.dumps(config))
    return out


@pytest.fixture(scope="module")
def reported(broken) -> tuple[Path, object]:
    made = invoke("report", str(broken), "--reps", str(REPS))
    assert made.exit_code == 0, made.output
    return broken, made


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_report_lists_every_unreadable_run_folder_with_path_and_reason_everywhere(reported):
    out, made = reported
    runs = out / "modes-2d"
    stderr = made.stderr
    assert "Traceback" not in made.output
    record = json.loads((out / "report.json").read_text())
    inventory = record["inventory"]
    assert inventory["run_folders_found"] == 7 and inventory["read"] == [str(runs / GOOD)]
    skipped = {Path(s["run_dir"]).name: s for s in inventory["skipped"]}
    assert sorted(skipped) == sorted(REASONS)
    html = unescape(re.sub(r"<[^>]+>", " ", (out / "report.html").read_text()))
    pdf = subprocess.run(["pdftotext", "-raw", str(out / "report.pdf"), "-"], capture_output=True, text=True,
                         check=True).stdout  # (-raw: cell after cell, as drawn)
    for name, reason in REASONS.items():
        ablation, k = WOULD_BE[name]
        line = next((line for line in stderr.splitlines() if str(runs / name) in line), "")
        assert line.startswith(f"skipped run folder {runs / name}: ") and re.search(reason, line), stderr
        assert f"(it would be modes-2d {ablation} K={k})" in line
        entry = skipped[name]
        assert re.fullmatch(reason + ".*", entry["reason"]) and entry["run_dir"] == str(runs / name)
        assert (entry["task"], entry["ablation"], entry["k"]) == ("modes-2d", ablation, k)
        row = squeezed(f"modes-2d/{name} modes-2d {ablation} K={k} {entry['reason']}")
        for text in (html, pdf):  # a row of the inventory's table: the folder, the run it would be, the reason
            assert row in squeezed(text), (row, text)
    summary = "7 run folders found: 1 read, 6 skipped"
    assert summary in made.stdout and record["summary"][0].startswith(summary)
    assert "skipped as unreadable" in record["summary"][1]  # (not "not run": the dynamic runs exist)
    for text in (html, pdf):
        assert squeezed(f"7 run folders found under {out.resolve()}: 1 read, 6 skipped") in squeezed(text)
        assert squeezed("Not in this table: the run folders skipped as unreadable") in squeezed(text)
    scores = (out / "scores.csv").read_text().splitlines()
    assert len(scores) == 1 + 3 and all(",static-routing,4," in row for row in scores[1:])


def test_strict_refuses_a_folder_with_a_skipped_run_and_writes_nothing(small_sweep, tmp_path):
    out = copy_sweep(small_sweep, tmp_path / "runs")
    break_dangling(out / "modes-2d" / DANGLING)
    delete_chunk(out / "modes-2d" / GOOD, *LOST_CHUNK)  # (found from the store's listing, as MISSING_CHUNK)
    made = invoke("report", str(out), "--reps", str(REPS), "--strict")
    assert made.exit_code == 2, made.output
    error = made.stderr.strip().splitlines()[-1]
    assert error.startswith("error: --strict: 2 of the 4 run folders") and "Traceback" not in made.output
    assert str(out / "modes-2d" / DANGLING) in error and re.search(REASONS[DANGLING], error)
    assert str(out / "modes-2d" / GOOD) in error and re.search(REASONS[MISSING_CHUNK], error)
    assert not [name for name in OUTPUTS if (out / name).exists()]
    assert not list(out.glob(".*.tmp"))


def test_open_runs_warns_naming_each_skipped_run_and_lists_them_in_attrs(broken):
    runs = broken / "modes-2d"
    for read_values, unreadable in ((False, [DANGLING, BAD_METADATA, NOT_LOGGED, MISSING_CHUNK]),
                                    (True, [DANGLING, BAD_METADATA, BAD_CHUNK, NOT_LOGGED, MISSING_CHUNK])):
        with pytest.warns(SkippedRunWarning) as caught:
            ds = open_runs(broken, read_values=read_values)
        messages = [str(w.message) for w in caught if issubclass(w.category, SkippedRunWarning)]
        assert len(messages) == len(unreadable), messages
        for name in unreadable:
            assert any(str(runs / name) in m and re.search(REASONS[name], m) for m in messages), (name, messages)
            assert any(entry.startswith(f"{runs / name}: ") and re.search(REASONS[name], entry)
                       for entry in ds.attrs["skipped_runs"]), ds.attrs["skipped_runs"]
        assert len(ds.attrs["skipped_runs"]) == len(unreadable)
        read = sorted(str(p) for p in ds.run_dir.values.ravel() if p)
        assert read == sorted(str(runs / n) for n in {BAD_CHUNK, BAD_CONFIG, GOOD} - set(unreadable))


def test_a_run_store_opens_with_plain_xarray_without_a_warning_and_its_consolidated_metadata_is_current(small_sweep):
    for group in SMALL_SWEEP_GROUPS:
        path = small_sweep / group / store.LOG_STORE
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            consolidated = xr.open_zarr(path)
        with xr.open_zarr(path, consolidated=False) as plain, consolidated:  # (a run's first flush writes the
            assert consolidated.sizes["step"] > 1  # store whole, each later one appends a row)
            assert consolidated.sizes == plain.sizes and consolidated.attrs == plain.attrs
            assert {n: v.shape for n, v in consolidated.variables.items()} \
                == {n: v.shape for n, v in plain.variables.items()}
            assert all(consolidated[c].equals(plain[c]) for c in plain.indexes), group


def open_without_warnings(path: Path) -> xr.Dataset:
    """The store at `path` loaded through plain `xr.open_zarr` (consolidated metadata), any warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with xr.open_zarr(path) as logs:
            return logs.load()


def test_every_log_version_is_consolidated_after_appends_and_after_a_resume_rewrote_it(tmp_path):
    def row(step: int) -> dict:
        return {"critic_loss": np.full(2, step, np.float32)}

    log = store.RunLog(tmp_path, [0, 1], {"task": "modes-2d"})
    for step in (10, 20, 30):  # a whole write, then two appends
        log.append("step", step, row(step))
        log.flush()
    assert open_without_warnings(tmp_path / store.LOG_STORE).step.values.tolist() == [10, 20, 30]

    resumed = store.RunLog(tmp_path, [0, 1], {"task": "modes-2d"})
    resumed.load(up_to_step=20, step_interval=10)  # as --resume from a checkpoint at step 20
    for step in (30, 40):  # the store rewritten whole, then an append
        resumed.append("step", step, row(step))
        resumed.flush()
    logs = open_without_warnings(tmp_path / store.LOG_STORE)
    assert logs.step.values.tolist() == [10, 20, 30, 40]
    assert logs.critic_loss.values[0].tolist() == [10, 20, 30, 40]


def test_every_chunk_is_written_so_that_a_deleted_one_is_named_and_a_store_rewritten_elsewhere_is_not_judged(
        tmp_path):
    log = store.RunLog(tmp_path, [0, 1], {"task": "modes-2d"})
    for step, value in ((10, np.nan), (20, 0.5), (30, np.nan)):  # the fill value only (NaN): a whole write, appends
        log.append("step", step, {"critic_loss": np.full(2, value, np.float32)})
        log.flush()
    logs = tmp_path / store.LOG_STORE
    assert missing_chunks(logs) is None
    delete_chunk(tmp_path, "critic_loss", "0.2")
    assert missing_chunks(logs) == ("its logs.zarr lacks 1 of 3 chunks of critic_loss (0.2): deleted or not yet "
                                    "copied; re-run it or restore the folder")

    # Rewritten by plain xarray (zarr skips fill-only chunks), its attrs kept: a missing chunk cannot be told there.
    copy = tmp_path / "elsewhere" / store.LOG_STORE
    xr.open_zarr(logs).load().to_zarr(copy, consolidated=False)
    assert (copy / "critic_loss" / "c" / "0" / "1").is_file() and not (copy / "critic_loss" / "c" / "0" / "0").exists()
    assert missing_chunks(copy) is None


def test_the_writer_runs_writes_in_order_and_after_a_failure_runs_none_and_raises_it(tmp_path):
    done = []

    def write(name):
        if name == "bad":
            raise OSError("disk full")
        done.append(name)
    writer = store.Writer()
    for name in ("first", "second", "bad", "after"):
        writer.submit(write, name)
    with pytest.raises(OSError, match="disk full"):
        writer.close()
    assert done == ["first", "second"]  # in order; none after the failure
    with pytest.raises(OSError, match="disk full"):
        writer.submit(write, "later")
