"""--wandb PROJECT: each seed is its own Weights & Biases run (real wandb, offline: these machines have no
network), named task/ablation/k/seed, grouped by the results folder, with config.json as its config, and
holding the run log's rows (training metrics, diagnostics' scalars, evaluations) at their steps, each step
once across a resume; offline by default without credentials; a refusal without the extra.

The offline runs are read back from their .wandb files: LevelDB-log framing (32 KiB blocks, 7-byte record
headers) after a 7-byte W&B header, each record one `wandb_internal_pb2.Record` protobuf, the message
classes wandb itself ships (wandb 0.31 has no Python reader of these files, and `wandb sync` only uploads).
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import sys
from pathlib import Path

import pytest
import xarray as xr

from ablations import grid
from drol_diag.runfolder import store
from tests.helpers import invoke
from tests.test_bad_input import assert_refused, files_under
from training.tracking import NOT_TRACKED, RECORD_FILE, WANDB_MISSING, WandbRuns, metric_key, wandb_mode

# The programs of tests/test_run.py::test_resume_is_exact (every chunk 20 updates long; the session's compilation
# cache has them), a log row and an evaluation every 40 updates.
LEG = ("--task", "modes-2d", "--hidden", "32,32", "--batch-size", "64", "--k", "4", "--seeds", "0,1", "--probes", "64",
       "--log-interval", "40", "--eval-interval", "40", "--eval-episodes", "4", "--checkpoint-interval", "20",
       "--no-progress", "--wandb", "test-project")
BLOCK = 32768  # LevelDB log block size
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4  # LevelDB log record types


def wandb_records(path: Path):
    """The protobuf records of one offline run file (run-<id>.wandb), in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B data file"
    position, pieces = 7, b""
    while position + 7 <= len(data):
        if BLOCK - position % BLOCK < 7:  # (a block's tail too short for a header is padding)
            position += BLOCK - position % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if kind == 0:  # (zeros: the rest of the block is unused)
            position += BLOCK - position % BLOCK
            continue
        payload, position = data[position + 7:position + 7 + length], position + 7 + length
        pieces = payload if kind in (FULL, FIRST) else pieces + payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            yield record


def item_key(item) -> str:
    """The key of a history or config item: `key`, or its `nested_key` parts joined by '/' (how wandb stores
    a key holding '/', e.g. train/critic_loss)."""
    return item.key or "/".join(item.nested_key)


def offline_runs(folder: Path) -> list[dict]:
    """Every offline run under folder/wandb: its id, name, group, project, config and history {step: {key:
    value}}, oldest first."""
    runs = []
    for run_file in sorted(folder.glob("wandb/offline-run-*/run-*.wandb")):
        run = {"folder": run_file.parent.name, "history": {}}
        for record in wandb_records(run_file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run.update(id=record.run.run_id, name=record.run.display_name, group=record.run.run_group,
                           project=record.run.project,
                           config={item_key(item): json.loads(item.value_json) for item in record.run.config.update})
            elif kind == "history":
                items = {item_key(item): json.loads(item.value_json) for item in record.history.item}
                assert record.history.step.num not in run["history"]
                run["history"][record.history.step.num] = {k: v for k, v in items.items() if not k.startswith("_")}
        runs.append(run)
    return runs


def same(a, b) -> bool:
    """Equal numbers (NaN equals NaN) or booleans."""
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch) -> Path:
    """WANDB_MODE=offline, wandb's folders (runs, cache, config, data) under tmp_path/wandb-home: that folder."""
    home = tmp_path / "wandb-home"
    home.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    for variable in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(home))
    for variable in ("WANDB_RUN_GROUP", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(variable, raising=False)
    return home


def history_matches_the_log(history: dict[int, dict], logs: xr.Dataset, index: int) -> None:
    """The W&B history {step: {key: value}} of seed `index` holds exactly the log's per-seed scalars at every
    logged step and eval_step: training metrics, diagnostics' scalars and evaluations (not eval_counted, which
    a resume marks again), no per-probe array."""
    scalars = {dim: [name for name, variable in logs.data_vars.items()
                     if variable.dims == ("seed", dim) and name not in NOT_TRACKED] for dim in store.ROW_DIMS}
    assert "critic_loss" in scalars["step"] and "flip_rate" in scalars["step"] and "eval_score" in scalars["eval_step"]
    assert sorted(history) == sorted(set(logs["step"].values.tolist()) | set(logs["eval_step"].values.tolist()))
    for dim, names in scalars.items():
        for i, step in enumerate(logs[dim].values.tolist()):
            for name in names:
                assert same(history[step][metric_key(dim, name)], logs[name].values[index, i].item()), (step, name)
    for step, row in history.items():
        expected = {metric_key(dim, name) for dim, names in scalars.items() if step in logs[dim].values for name in names}
        assert set(row) == expected, step  # (nothing else: no per-probe arrays)


def test_each_seed_is_an_offline_wandb_run_holding_the_logged_rows_once_across_resumes(tmp_path, wandb_offline):
    out = tmp_path / "sweep-7"
    run_dir = out / "modes-2d" / "dynamic-k4"
    plain = invoke("run", *LEG[:-2], "--steps", "40", "--out", str(out))  # (no --wandb: W&B gets its rows later)
    assert plain.exit_code == 0, plain.output
    assert not (run_dir / RECORD_FILE).exists() and not (wandb_offline / "wandb").exists()
    checkpoint_at_40 = (run_dir / store.CHECKPOINT_FILE).read_bytes()
    extended = invoke("run", *LEG, "--steps", "80", "--resume", "--out", str(out))
    assert extended.exit_code == 0, extended.output
    assert "wandb: 2 offline runs in" in extended.stderr and "upload with: wandb sync" in extended.stderr
    config = store.read_json(run_dir / store.CONFIG_FILE)
    assert config["wandb"] == "test-project"
    # As if killed after logging the row at 80 but before checkpointing past 40: the resume recomputes it.
    (run_dir / store.CHECKPOINT_FILE).write_bytes(checkpoint_at_40)
    (run_dir / store.SUMMARY_FILE).unlink()
    resumed = invoke("run", *LEG, "--steps", "80", "--resume", "--out", str(out))
    assert resumed.exit_code == 0, resumed.output
    with xr.open_zarr((run_dir / store.LOG_STORE).resolve()) as opened:
        logs = opened.load()
    ids = store.read_json(run_dir / RECORD_FILE)["ids"]

    runs = offline_runs(wandb_offline)
    assert len(runs) == 4  # two seeds, two legs with --wandb
    for index, seed in enumerate((0, 1)):
        legs = [run for run in runs if run["name"] == f"modes-2d/dynamic/k4/seed{seed}"]
        assert [run["id"] for run in legs] == [ids[str(seed)]] * 2 and len(set(ids.values())) == 2
        assert all(run["group"] == "sweep-7" and run["project"] == "test-project" for run in legs)
        assert all(run["config"] == {**config, "seed": seed, "_wandb": {}} for run in legs[:1])
        assert legs[1]["config"]["learner"] == config["learner"] and legs[1]["config"]["seed"] == seed
        # The resume that turned W&B on sends the log's row at 40, then the one at 80 as it makes it; the resume
        # that recomputes the row at 80 sends nothing.
        assert [sorted(run["history"]) for run in legs] == [[40, 80], []]
        history_matches_the_log(legs[0]["history"], logs, index)


def test_the_run_folder_keeps_its_wandb_run_ids_and_a_folder_started_again_gets_new_ones(tmp_path, wandb_offline):
    run_dir = tmp_path / "out" / "modes-2d" / "dynamic-k2"
    run_dir.mkdir(parents=True)

    def started_ids() -> list[str]:
        runs = WandbRuns("test-project", run_dir, {"run": {"task": "modes-2d"}}, [0], "modes-2d/dynamic/k2", "out",
                         tmp_path / "out")
        runs.close()
        return [run.id for run in runs.runs]

    first = started_ids()
    assert started_ids() == first
    (run_dir / RECORD_FILE).unlink()  # (what --force does: it deletes the run folder, and its wandb.json with it)
    assert not set(started_ids()) & set(first)


def test_wandb_without_the_extra_or_with_a_bad_project_is_refused_and_nothing_written(tmp_path, monkeypatch):
    out = tmp_path / "out"
    sweep = ("--tasks", "modes-2d", "--ablations", "dynamic", "--k", "2", "--seeds", "0", "--steps", "4",
             "--hidden", "8", "--no-progress", "--out", str(out))
    for bad in ("a/b", "", "x" * 129):
        assert_refused(invoke("run", *LEG[:-2], "--wandb", bad, "--steps", "4", "--out", str(out)),
                       "is not a W&B project name: 1 to 128 characters")
    monkeypatch.setitem(sys.modules, "wandb", None)  # (Python's mark of a module that cannot be imported)
    assert_refused(invoke("run", *LEG, "--steps", "4", "--out", str(out)), WANDB_MISSING)
    assert_refused(invoke("sweep", *sweep, "--wandb", "p"), "pip install 'drol-diag[wandb]'")
    assert not out.exists()
    (tmp_path / "sweep.toml").write_text('wandb = "p"\n')
    assert_refused(invoke("sweep", *sweep, "--from", str(tmp_path / "sweep.toml")), WANDB_MISSING)
    assert files_under(tmp_path) == {"sweep.toml": b'wandb = "p"\n'}


def test_a_sweep_gives_each_group_run_its_wandb_project():
    spec = grid.spec_from_values({"wandb": "from-file"}, {"tasks": "modes-2d", "ablations": "dynamic", "k": "2"})
    arguments = grid.run_arguments(spec, grid.expand(spec)[0], Path("/results"))
    assert arguments[arguments.index("--wandb") + 1] == "from-file"
    plain = grid.spec_from_values({}, {"tasks": "modes-2d"})
    assert "--wandb" not in grid.run_arguments(plain, grid.expand(plain)[0], Path("/results"))
    assert 'wandb = "from-file"' in grid.sweep_file_text(spec)


def test_wandb_runs_offline_unless_credentials_are_configured_or_wandb_mode_says(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert wandb_mode({"HOME": str(home)}) == "offline"
    assert wandb_mode({"HOME": str(home), "WANDB_MODE": "online"}) is None  # (wandb reads WANDB_MODE itself)
    assert wandb_mode({"HOME": str(home), "WANDB_API_KEY": "k" * 40}) is None
    (home / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    assert wandb_mode({"HOME": str(home)}) is None
    assert wandb_mode({"HOME": str(home), "WANDB_BASE_URL": "https://wandb.example.org"}) == "offline"
    other = tmp_path / "netrc"
    other.write_text("machine wandb.example.org login user password secret\n")
    assert wandb_mode({"HOME": str(home), "NETRC": str(other), "WANDB_BASE_URL": "https://wandb.example.org"}) is None
    other.write_text("machine this is not a netrc file\n")
    assert wandb_mode({"NETRC": str(other)}) == "offline"
    shutil.rmtree(home)
    assert wandb_mode({"HOME": str(home)}) == "offline"  # (no netrc file at all)
