"""Run folders as readers see them (store.py writes them): list them, open each or skip it with a one-line
reason, read its records, and, for a sweep, where a folder stands and who holds its lock."""

from __future__ import annotations

import dataclasses
import fcntl
import inspect
import itertools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from drol.config import LearnerConfig
from drol_diag.runfolder.record import comparable, setting_differences, setting_text
from drol_diag.runfolder.store import (
    CHECKPOINT_FILE,
    CHUNKS_COMPLETE_ATTR,
    CONFIG_FILE,
    FORMAT_VERSION,
    LOG_STORE,
    SUMMARY_FILE,
    lock_path,
    read_json,
)
from drol_diag.settings import RunConfig

GRID_SETTINGS_ATTR = "run.grid_settings"  # the store attr (config.json's run.grid_settings, a JSON list)
_OPEN_OPTIONS: dict[str, Any] = dict(engine="zarr", consolidated=False, chunks=None, cache=False)  # lazy, no dask
if "create_default_indexes" in inspect.signature(xr.open_dataset).parameters:  # xarray >= 2025.x
    _OPEN_OPTIONS["create_default_indexes"] = False  # indexes are built once, for the union; saves ~40%
# CF decoding: a no-op for RunLog's stores, ~25% of an open; one that needs it is opened again (_needs_cf_decoding).
_UNDECODED = dict(mask_and_scale=False, decode_times=False, decode_timedelta=False)


class RunsError(ValueError):
    """A run folder (or a set of them) that cannot be opened; the message is one line."""


@dataclass(frozen=True)
class SkippedRun:
    """A run folder found but left out: where it is and why (one line, without the path)."""

    run_dir: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.run_dir}: {self.reason}"


class _Unreadable(Exception):
    """Why one run folder cannot be read (one line, without its path)."""


@dataclass(frozen=True)
class LoggedRun:
    """One opened run: its identity, its grid point and its store, lazily indexed (values not read)."""

    run_dir: Path
    task: str
    ablation: str
    k: int
    logs: xr.Dataset
    coords: dict[str, np.ndarray]  # per dim of `logs`: its coordinate values, or 0..n-1 where it has none
    grid: tuple[str, ...] = ()  # the settings its sweep's grid varied (config.json's run.grid_settings)

    def setting(self, name: str) -> Any:
        """Its value of learner setting `name` (widths as text, 64x64); None: its method has no such setting."""
        value = self.logs.attrs.get(f"learner.{name}")
        if isinstance(value, str) and value.startswith("["):  # (widths: a JSON list in the attrs)
            value = setting_text(json.loads(value))
        return plain(value)


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value (0.3, not np.float64(0.3))."""
    return value.item() if isinstance(value, np.generic) else value


def missing_setting(value: Any) -> bool:
    """Whether a grid dim's value stands for a setting the run's method lacks (None, NaN or "")."""
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def count(n: int, noun: str) -> str:
    """'1 folder', '2 folders'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def listing(items, most: int = 3) -> str:
    """The first `most` items joined by '; ', then how many more."""
    items = list(items)
    more = f"; and {len(items) - most} more" if len(items) > most else ""
    return "; ".join(items[:most]) + more


def one_line(err: BaseException) -> str:
    """'JSONDecodeError: Expecting value: line 1 column 1 (char 0)': an error's type and message on one line."""
    text = " ".join(str(err).split()) or "(no message)"
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(err).__name__}: {text}"


def none_readable(root: Path, skipped) -> RunsError:  # (skipped: each "<run folder>: <reason>")
    return RunsError(f"none of the {len(skipped)} run folders under {root} could be read: {listing(map(str, skipped))}")


def find_run_dirs(root: Path) -> list[Path]:
    """Run folders (holding config.json) at or below `root`, sorted; not descending into run folders, hidden
    folders, zarr stores or symlinked folders."""
    found = []
    for folder, subfolders, files in os.walk(root):
        if CONFIG_FILE in files:
            found.append(Path(folder))
            subfolders.clear()
            continue
        subfolders[:] = [s for s in subfolders if not s.startswith(".") and not s.endswith(".zarr")]
    return sorted(found)


def read_logged_runs(path: str | Path, read_values: bool = False) -> tuple[list[LoggedRun], list[SkippedRun]]:
    """Every run folder under `path` (find_run_dirs), opened (metadata and listing only: missing_chunks) or
    skipped with the reason, in folder order; `read_values=True` also decodes every chunk once, so that a run
    with a damaged chunk is skipped here. Raises FileNotFoundError when `path` does not exist or holds no run
    folder with a logs.zarr; RunsError when the only run found, or every run found, cannot be read."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such folder: {root}")
    run_dirs = find_run_dirs(root)
    if not any(os.path.lexists(run_dir / LOG_STORE) for run_dir in run_dirs):
        unlogged = f"; {count(len(run_dirs), 'folder')} with {CONFIG_FILE} but no {LOG_STORE} yet: " \
            f"{listing(map(str, run_dirs))}" if run_dirs else ""
        raise FileNotFoundError(f"no runs under {root}: a run folder holds {CONFIG_FILE} and {LOG_STORE} "
                                f"(written by `drol-diag run`){unlogged}")
    runs: list[LoggedRun] = []
    skipped: list[SkippedRun] = []
    for run_dir in run_dirs:
        try:
            runs.append(open_logged(run_dir, read_values))
        except _Unreadable as err:
            if len(run_dirs) == 1:
                raise RunsError(f"run {run_dir}: {err}") from err.__cause__
            skipped.append(SkippedRun(run_dir, str(err)))
    if not runs:
        raise none_readable(root, skipped)
    return runs, skipped


def open_logged(run_dir: Path, read_values: bool = False) -> LoggedRun:
    """Open one run's store lazily and check it; _Unreadable if not. Repeated if a flush moved the link meanwhile."""
    store = run_dir / LOG_STORE
    if not store.exists():
        if store.is_symlink():
            raise _Unreadable(f"its {LOG_STORE} is a link to {os.readlink(store)}, which does not exist")
        raise _Unreadable(f"no {LOG_STORE}: nothing logged yet (a run that has just started), or it was deleted")
    for attempt in range(3):
        before = _link_target(store)
        try:
            run = _read_run(run_dir, store, read_values)
        except Exception as err:  # a damaged store raises whatever zarr or xarray meets first
            if _link_target(store) != before and attempt < 2:
                continue
            if isinstance(err, _Unreadable):
                raise
            raise _Unreadable(f"cannot read its {LOG_STORE}: {one_line(err)}") from err
        if _link_target(store) == before:
            break
    return run


def _link_target(path: Path) -> str | None:  # (None: not a link, a plain store folder, or gone)
    try:
        return os.readlink(path)
    except OSError:
        return None


def _read_run(run_dir: Path, store: Path, read_values: bool = False) -> LoggedRun:
    logs = xr.open_dataset(store, **_OPEN_OPTIONS, **_UNDECODED)
    if _needs_cf_decoding(logs):
        logs = xr.open_dataset(store, **_OPEN_OPTIONS)
    version = logs.attrs.get("format_version")
    if version != FORMAT_VERSION:
        raise _Unreadable(f"its log has format_version {version!r}; this drol-diag reads format_version "
                          f"{FORMAT_VERSION} (re-run it, or open it with the drol-diag version that wrote it)")
    missing = [a for a in ("task", "ablation", "num_candidates") if a not in logs.attrs]
    if missing:
        raise _Unreadable(f"its {LOG_STORE} lacks the attrs {', '.join(missing)}")
    lacking = missing_chunks(store)
    if lacking:
        raise _Unreadable(lacking)
    if read_values:
        _read_values(store, logs)
    variables = logs.variables
    coords = {dim: np.asarray(variables[dim].values) if dim in variables else np.arange(size)
              for dim, size in logs.sizes.items()}
    grid = tuple(json.loads(logs.attrs.get(GRID_SETTINGS_ATTR, "[]")))
    return LoggedRun(run_dir, str(logs.attrs["task"]), str(logs.attrs["ablation"]),
                     int(logs.attrs["num_candidates"]), logs, coords, grid)


def missing_chunks(store: Path) -> str | None:
    """Which chunk files a run's store lacks, from its listing and metadata: "its logs.zarr lacks 1 of 6 chunks
    of eval_score (0.2): ...", or None. Only a store whose attr `chunks_complete_in` names its own version folder
    is checked: elsewhere a missing chunk may be a fill-only one zarr did not write."""
    real = Path(os.path.realpath(store))
    attrs, arrays = _store_metadata(real)
    if attrs.get(CHUNKS_COMPLETE_ATTR) != real.name:
        return None
    top = len(str(real)) + 1  # (each file's path under the store, cut as text: relpath costs 6 times more)
    present = {os.path.join(here, file)[top:] for here, _, files in os.walk(real) for file in files}
    lacking = []
    for name, meta in arrays.items():
        keys = _chunk_keys(meta)
        lost = [key for key in keys if f"{name}/{key}" not in present]
        if lost:
            more = ", ..." if len(lost) > 3 else ""
            lacking.append(f"{len(lost)} of {count(len(keys), 'chunk')} of {name} ({', '.join(lost[:3])}{more})")
    if not lacking:
        return None
    return f"its {LOG_STORE} lacks {listing(lacking)}: deleted or not yet copied; re-run it or restore the folder"


def _store_metadata(real: Path) -> tuple[dict, dict[str, dict]]:
    """A zarr format 3 store's root attrs and each array's metadata (consolidated, else each array's own)."""
    root = json.loads((real / "zarr.json").read_text())
    arrays = (root.get("consolidated_metadata") or {}).get("metadata") or {
        name: json.loads((real / name / "zarr.json").read_text()) for name in sorted(os.listdir(real))
        if (real / name / "zarr.json").is_file()}
    return root.get("attributes", {}), {name: meta for name, meta in arrays.items() if meta.get("node_type") == "array"}


def _chunk_keys(meta: dict) -> list[str]:
    """Every chunk's file name under its array's folder, in zarr format 3's "v2" or "default" key encoding."""
    encoding = meta["chunk_key_encoding"]
    separator = encoding.get("configuration", {}).get("separator", "." if encoding["name"] == "v2" else "/")
    grid = [range(-(-size // chunk)) for size, chunk in zip(meta["shape"], meta["chunk_grid"]["configuration"]
                                                             ["chunk_shape"])]
    if encoding["name"] == "v2":
        return [separator.join(map(str, index)) or "0" for index in itertools.product(*grid)]
    return [separator.join(["c", *map(str, index)]) for index in itertools.product(*grid)]


def _read_values(store: Path, logs: xr.Dataset) -> None:
    """Decode every chunk once, then drop it: _Unreadable naming the first variable with a chunk that does not
    decode. A raw zstd chunk (as RunLog writes) is decompressed and its size checked, at a tenth of zarr's cost."""
    from numcodecs import Zstd  # (zarr's own zstd codec)

    real, zstd = Path(os.path.realpath(store)), Zstd()
    arrays = _store_metadata(real)[1]
    for name, variable in logs.variables.items():
        meta = arrays.get(str(name), {})
        dtype = np.dtype(meta["data_type"]) if meta.get("data_type") in np.sctypeDict else None
        raw = dtype is not None and dtype.kind in "biuf" and [c["name"] for c in meta["codecs"]] == ["bytes", "zstd"]
        try:
            if not raw:
                variable.values  # noqa: B018 - read (and drop) every chunk
                continue
            size = math.prod(meta["chunk_grid"]["configuration"]["chunk_shape"]) * dtype.itemsize
            for key in _chunk_keys(meta):
                try:
                    data = (real / str(name) / key).read_bytes()
                except FileNotFoundError:  # (the fill value: missing_chunks tells where that is damage)
                    continue
                decoded = len(zstd.decode(data))
                if decoded != size:
                    raise ValueError(f"chunk {key} decodes to {decoded} bytes, not the {size} of a chunk")
        except Exception as err:  # a damaged chunk raises whatever its codec meets
            raise _Unreadable(f"cannot read the values of {name} in its {LOG_STORE}: {one_line(err)}") from err


def _needs_cf_decoding(logs: xr.Dataset) -> bool:
    """Whether CF decoding would change any value of `logs` (opened undecoded)."""
    for variable in logs.variables.values():
        attrs = variable.attrs
        fill = attrs.get("_FillValue", np.nan)
        if not (isinstance(fill, float) and np.isnan(fill)) or "missing_value" in attrs:
            return True
        if {"scale_factor", "add_offset", "calendar"} & set(attrs) or " since " in str(attrs.get("units", "")):
            return True
    return False


# ------------------------------------------------------------------------------------------
# A run folder's records, and where it stands for a sweep.

NEW = "new"  # no config.json: never started
FINISHED = "finished"  # summary.json at the sweep's steps (or every seed diverged)
RESUMABLE = "resumable"  # same settings, a checkpoint to go on from
UNSTARTED = "unstarted"  # same settings, config.json but no checkpoint yet: nothing to resume
CONFLICT = "conflict"  # other settings (or more steps) than the sweep's

SCHEDULE_FIELDS = ("log_interval", "eval_interval", "eval_episodes", "checkpoint_interval")  # must match too


@dataclass(frozen=True)
class FolderState:
    """What a run folder holds, for the sweep's decision to skip, resume or (re)start it."""

    kind: str  # NEW, FINISHED, RESUMABLE, UNSTARTED or CONFLICT
    steps_done: int | None = None  # updates per seed summary.json reports (None: no summary)
    detail: str = ""  # CONFLICT: what differs, one line


def read_record(path: Path) -> dict[str, Any] | None:
    """A run folder's JSON file (None if absent). Raises ValueError (one line) if unreadable."""
    if not path.exists():
        return None
    try:
        return read_json(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None


def run_identity(run_dir: Path) -> tuple[str, str, int] | None:
    """The (task, ablation, K) a run folder's config.json records; None where it cannot be read."""
    try:
        config = read_json(run_dir / CONFIG_FILE)
        return str(config["run"]["task"]), str(config["run"]["ablation"]), int(config["learner"]["num_candidates"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def settings_of(record: dict[str, Any]) -> dict[str, Any]:
    """The settings of a config.json record a sweep compares: record.comparable's plus SCHEDULE_FIELDS, as JSON."""
    schedule = {name: record["run"][name] for name in SCHEDULE_FIELDS}
    return {**comparable(record), **json.loads(json.dumps(schedule))}


def settings_record(learner: LearnerConfig, run: RunConfig, diagnostics: dict[str, Any]) -> dict[str, Any]:
    """The settings (settings_of) a run of these configs and diagnostics (record.diagnostics_record) records."""
    return settings_of({"learner": dataclasses.asdict(learner), "run": dataclasses.asdict(run),
                        "diagnostics": diagnostics})


def folder_state(run_dir: Path, expected: dict[str, Any], steps: int) -> FolderState:
    """Where the run folder stands against the settings `expected` (settings_record) and `steps`."""
    config = read_record(run_dir / CONFIG_FILE)
    if config is None:
        return FolderState(NEW)
    found = settings_of(config)
    changed = [name for name in expected if found.get(name) != expected[name]]
    if changed:
        differences = setting_differences({k: found.get(k) for k in expected}, expected, "run folder", "this sweep")
        return FolderState(CONFLICT, detail=f"its {', '.join(changed)} differ from this sweep's: "
                                            f"{'; '.join(differences)} (see {run_dir / CONFIG_FILE})")
    summary = read_record(run_dir / SUMMARY_FILE)
    done = None if summary is None else int(summary["steps"])
    if done is not None and done > steps:
        return FolderState(CONFLICT, done, f"it has {done} updates per seed, more than this sweep's {steps}")
    if done is not None and (done == steps or min(summary["diverged_steps"]) >= 0):
        return FolderState(FINISHED, done)
    return FolderState(RESUMABLE if (run_dir / CHECKPOINT_FILE).exists() else UNSTARTED, done)


def lock_holder(run_dir: Path) -> str | None:
    """Who holds the run folder's lock (store.run_lock), e.g. 'pid 123 on node7'; None if nobody."""
    path = lock_path(run_dir)
    if not path.exists():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
    return None  # (closing the file let go of the lock it took)
