"""Open a sweep of run folders as one lazy xarray Dataset.

    ds = open_runs("runs/")   # dims task, ablation, k, seed, step, ... whatever the folder holds
    ds.flip_rate.sel(task="modes-2d", k=16).mean("seed").plot.line(x="step", hue="ablation")

A run folder (`<out>/<task>/<ablation>-k<K>/`, see drol_diag.runfolder.store) holds `config.json` and
`logs.zarr`, one Dataset per run. `open_runs` finds every run folder under a path, reads each
store's metadata (no values), and lays the runs side by side along new leading dims `task`,
`ablation` and `k` (and one per setting a sweep's hyper-parameter grid varied, e.g. `bc_coef`); every
value stays on disk until it is computed (dask, one chunk per run and variable).
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from drol_diag.runfolder.record import setting_text
from drol_diag.runfolder.store import CHUNKS_COMPLETE_ATTR, CONFIG_FILE, FORMAT_VERSION, LOG_STORE

RUN_DIMS = ("task", "ablation", "k")  # then one dim per setting a sweep's grid varied (config.json's run.grid_settings)
GRID_SETTINGS_ATTR = "run.grid_settings"  # the store attr (config.json's run.grid_settings, a JSON list)
# Store attrs that identify or describe one run; they become dims or per-run variables, never combined attrs.
PER_RUN_ATTRS = frozenset({"task", "ablation", "num_candidates", "run.task", "run.ablation", "task.name",
                           "learner.num_candidates", "git_commit", "command", CHUNKS_COMPLETE_ATTR})
# Lazily indexed backend arrays (no dask, nothing cached): the combined dask arrays read through them.
_OPEN_OPTIONS: dict[str, Any] = dict(engine="zarr", consolidated=False, chunks=None, cache=False)
if "create_default_indexes" in inspect.signature(xr.open_dataset).parameters:  # xarray >= 2025.x
    _OPEN_OPTIONS["create_default_indexes"] = False  # indexes are built once, for the union; saves ~40%
# CF decoding is a no-op for stores RunLog writes (floats' _FillValue is NaN, no times) and costs ~25% of
# an open; a store whose attrs ask for real decoding is opened again with it (`_needs_cf_decoding`).
_UNDECODED = dict(mask_and_scale=False, decode_times=False, decode_timedelta=False)


class RunsError(ValueError):
    """A run folder (or a set of them) that cannot be opened; the message is one line."""


class SkippedRunWarning(UserWarning):
    """A run among several was unreadable or of another log format and was left out."""


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
class _Run:
    """One opened run: its identity and its store, lazily indexed (values not read)."""

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


def open_runs(path: str | Path, *, read_values: bool = False) -> xr.Dataset:
    """Every run under `path` (one run folder, or any folder above run folders) as one lazy Dataset.

    Dims: `task`, `ablation`, `k` (K, candidates per state), one per setting a sweep's hyper-parameter grid
    varied (`drol-diag sweep --grid bc_coef=...`: config.json's run.grid_settings, e.g. `bc_coef`, `lr`, in
    the order first met; each run sits at its own value of it, from its config.json's learner settings as its
    store's attrs repeat them (`learner.bc_coef`; widths as text, 64x64), grid or not; a run whose method
    lacks the setting, e.g. fql in a bc_coef grid, at NaN, or "" for a text setting), then the store's own dims `seed`,
    `step`, `eval_step`, `probe`, `candidate`, `layer`, `quantile`, `reference`. Each variable is
    the store's variable with the leading run dims added, e.g. flip_rate (task, ablation, k, seed,
    step), winner (task, ablation, k, seed, step, probe), load (..., seed, step, candidate),
    eval_score (..., seed, eval_step), probe_index (..., seed, probe), support_dist_ref (..., reference),
    ood_threshold (task, ablation, k).

    - The dims are the same for every folder: `task`, `ablation` and `k` are dims even when every run
      shares one value (a single run gives size-1 dims), so code written on one folder runs on the
      next; select what to plot, e.g. `.sel(task="modes-2d", k=16).mean("seed")` -> (ablation, step).
      Only runs of a grid add dims (its swept settings'), size-1 for one run of it like the others.
    - Outer join: each dim's coordinate is the sorted union over runs; combinations a run lacks
      (another seed set, other steps, another K's extra candidates, a (task, ablation, K) never run)
      are NaN. So integer and boolean variables (winner, diverged, ...) become float64; float
      variables keep their dtype. `reference` has no coordinate in the stores (its entries are a
      sample of distances); runs are aligned by position and padded with NaN at the end.
    - Lazy: values are dask arrays, one chunk per (run, variable), read from disk when computed.
      Only each store's metadata and coordinates are read here (about 20 ms per run on 2 CPU cores).
    - `load` shares its name with Dataset.load: write ds["load"], not ds.load.
    - Per-run information: data variables `run_dir` and `git_commit` (task, ablation, k), strings,
      "" where there is no run. attrs: `format_version`, plus each store attr that every run holds
      with the same value (a sweep's shared config such as `learner.lr`); attrs that differ between
      runs, and the identity attrs that became dims (task, ablation, num_candidates, ...) or that
      are per run (git_commit, command), are dropped; see each run's config.json for those.

    A run folder is a folder holding `config.json` (and, once it logged, `logs.zarr`); folders below
    a run folder, hidden folders (`.versions`, ...) and `*.zarr` folders are not searched, nor
    symlinked folders. Values are read when computed: open again after a run has moved on (resumed, rerun).

    Every run folder found is either in the Dataset or skipped: among several, a run that cannot be
    read (no `logs.zarr` yet, a `logs.zarr` link that points nowhere, damaged metadata, a chunk file
    missing, another log format_version) is left out with a SkippedRunWarning naming its folder and the
    reason, and `attrs["skipped_runs"]` lists every one left out as "<run folder>: <reason>" ([] when
    none; `read_runs` gives them as SkippedRun records, without warnings).

    Metadata and the store's listing are checked by default: a missing chunk file, which zarr would read
    as its fill value (NaN, 0) without an error, is found from the listing (`missing_chunks`: 3 ms a run of
    200 chunk files, 30 ms of 5,000; a store written before drol-diag wrote every chunk cannot be checked
    so), while a damaged one raises when its values are computed. `read_values=True` decodes every chunk
    of every run once here (then drops it; values are read again when computed), so that a run with a
    chunk that cannot be read is skipped with the reason instead of raising later; drol-diag report opens
    runs this way.

    Raises FileNotFoundError when `path` does not exist or holds no run folder with a `logs.zarr`;
    RunsError (a ValueError, one-line message) when the only run found cannot be read (the reason
    as above, e.g. a log format_version other than drol_diag.runfolder.store.FORMAT_VERSION), when
    every run found is unreadable, or when two run folders are the same (task, ablation, K).
    """
    logs, skipped = read_runs(path, read_values=read_values)
    for run in skipped:
        warnings.warn(f"open_runs skipped run {run}", SkippedRunWarning, stacklevel=2)
    return logs


def read_runs(path: str | Path, *, read_values: bool = False) -> tuple[xr.Dataset, tuple[SkippedRun, ...]]:
    """`open_runs` without the warnings: the Dataset and the run folders left out, in folder order,
    for a caller that reports them itself (drol-diag report lists them in its inventory)."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such folder: {root}")
    run_dirs = find_run_dirs(root)
    if not any(os.path.lexists(run_dir / LOG_STORE) for run_dir in run_dirs):
        unlogged = f"; {_count(len(run_dirs), 'folder')} with {CONFIG_FILE} but no {LOG_STORE} yet: " \
            f"{_listing(map(str, run_dirs))}" if run_dirs else ""
        raise FileNotFoundError(f"no runs under {root}: a run folder holds {CONFIG_FILE} and {LOG_STORE} "
                                f"(written by `drol-diag run`){unlogged}")
    runs: list[_Run] = []
    skipped: list[SkippedRun] = []
    for run_dir in run_dirs:
        try:
            runs.append(_open_run(run_dir, read_values))
        except _Unreadable as err:
            if len(run_dirs) == 1:
                raise RunsError(f"run {run_dir}: {err}") from err.__cause__
            skipped.append(SkippedRun(run_dir, str(err)))
    if not runs:
        raise RunsError(f"none of the {len(run_dirs)} run folders under {root} could be read: "
                        f"{_listing(map(str, skipped))}")
    _check_distinct(runs)
    runs = _drop_inconsistent_variables(runs)
    combined = _combine(runs)
    combined.attrs["skipped_runs"] = [str(run) for run in skipped]
    return combined, tuple(skipped)


def _count(n: int, noun: str) -> str:
    """'1 folder', '2 folders'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _listing(items, most: int = 3) -> str:
    """The first `most` items joined by '; ', then how many more."""
    items = list(items)
    more = f"; and {len(items) - most} more" if len(items) > most else ""
    return "; ".join(items[:most]) + more


def find_run_dirs(root: Path) -> list[Path]:
    """Run folders at or below `root` (sorted): folders holding config.json, whether or not their
    logs.zarr exists; not descending into run folders, hidden folders or zarr stores."""
    found = []
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        if CONFIG_FILE in files:
            found.append(here)
            subfolders.clear()
            continue
        subfolders[:] = [s for s in subfolders if not s.startswith(".") and not s.endswith(".zarr")]
    return sorted(found)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "(no message)"
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(err).__name__}: {text}"


def _open_run(run_dir: Path, read_values: bool = False) -> _Run:
    """Open one run's store lazily and check its format (and, with `read_values`, read every value
    once). Raises _Unreadable (one line).

    A writing run swaps its `logs.zarr` link to a new version at each flush; metadata read across
    a swap could mix two versions, so the open is repeated if the link moved meanwhile. Values are
    read through the link later: chunks once written are the same in every later version.
    """
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
            raise _Unreadable(f"cannot read its {LOG_STORE}: {_one_line(err)}") from err
        if _link_target(store) == before:
            break
    return run


def _link_target(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:  # not a link (a plain store folder), or gone
        return None


def _read_run(run_dir: Path, store: Path, read_values: bool = False) -> _Run:
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
    return _Run(run_dir, str(logs.attrs["task"]), str(logs.attrs["ablation"]), int(logs.attrs["num_candidates"]),
                logs, coords, grid)


def missing_chunks(store: Path) -> str | None:
    """Which chunk files a run's store lacks, from its own listing and consolidated metadata (no value read):
    "its logs.zarr lacks 1 of 6 chunks of eval_score (0.2): ...", or None when it lacks none.

    zarr reads a missing chunk as the fill value (NaN, 0) without an error, and by default does not write a
    chunk holding only the fill value; so only a store whose attr `chunks_complete_in` names its own version
    folder (drol_diag.runfolder.store writes every chunk) is checked; None for any other (written before that,
    or rewritten by other code), where a missing chunk cannot be told from a fill-only one.
    """
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
            lacking.append(f"{len(lost)} of {_count(len(keys), 'chunk')} of {name} ({', '.join(lost[:3])}{more})")
    if not lacking:
        return None
    return f"its {LOG_STORE} lacks {_listing(lacking)}: deleted or not yet copied; re-run it or restore the folder"


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
    """Decode every chunk of the store once, then drop it: _Unreadable naming the first variable with a chunk that
    does not decode. A chunk stored as RunLog writes it (zstd of the raw numbers) is decompressed straight from
    its file and its size checked, as zarr does, at a sixth to a tenth of the cost through zarr; any other
    variable is read through xarray. (zstd without checksums: a chunk whose bits flipped may still decode.)"""
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
            raise _Unreadable(f"cannot read the values of {name} in its {LOG_STORE}: {_one_line(err)}") from err


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


def _grid_dims(runs: list[_Run]) -> list[str]:
    """The settings any run's sweep grid varied, in the order first met: each becomes a leading dim."""
    return list(dict.fromkeys(name for run in runs for name in run.grid))


def _run_key(run: _Run, grid: list[str]) -> tuple:
    """The run's place on the leading dims: (task, ablation, k, its value of each grid setting)."""
    return (run.task, run.ablation, run.k, *(run.setting(name) for name in grid))


def _check_distinct(runs: list[_Run]) -> None:
    seen: dict[tuple, Path] = {}
    grid = _grid_dims(runs)
    for run in runs:
        key = _run_key(run, grid)
        if key in seen:
            point = "".join(f", {name}={value}" for name, value in zip(grid, key[3:]))
            raise RunsError(f"runs {seen[key]} and {run.run_dir} are both task={run.task}, ablation={run.ablation}, "
                            f"K={run.k}{point}; open a folder that holds only one of them")
        seen[key] = run.run_dir


def _drop_inconsistent_variables(runs: list[_Run]) -> list[_Run]:
    """Leave out (with a warning) a variable whose dims in a run differ from its dims in the first run having it."""
    dims: dict[str, tuple[str, ...]] = {}
    kept = []
    for run in runs:
        odd = []
        for name, variable in run.logs.data_vars.items():
            expected = dims.setdefault(str(name), variable.dims)
            if variable.dims != expected:
                odd.append(name)
                warnings.warn(f"open_runs: {name} in run {run.run_dir} has dims {variable.dims}, not {expected}; "
                              "it is left out for that run", SkippedRunWarning, stacklevel=3)
        kept.append(dataclasses.replace(run, logs=run.logs.drop_vars(odd)) if odd else run)
    return kept


def _fill_for(dtypes: list[np.dtype]) -> tuple[np.dtype, Any]:
    """The dtype that holds every run's values and a missing marker, and that marker."""
    dtype = np.result_type(*dtypes)
    if dtype.kind in "biu":
        return np.dtype(np.float64), np.nan
    if dtype.kind in "fc":
        return dtype, np.nan
    if dtype.kind in "mM":
        return dtype, np.datetime64("NaT") if dtype.kind == "M" else np.timedelta64("NaT")
    return np.dtype(object), None


def _combine(runs: list[_Run]) -> xr.Dataset:
    """Lay `runs` out along (task, ablation, k, grid settings...) with an outer join of every other dim."""
    grid = _grid_dims(runs)
    keys = {id(r): _run_key(r, grid) for r in runs}
    lead = {dim: _coordinate([keys[id(r)][i] for r in runs]) for i, dim in enumerate(RUN_DIMS + tuple(grid))}
    lead_index = {dim: {_missing_safe(value): i for i, value in enumerate(values)} for dim, values in lead.items()}
    at = {tuple(lead_index[dim][_missing_safe(value)] for dim, value in zip(lead, keys[id(r)])): r for r in runs}
    lead_dims = tuple(lead)

    dims = list(dict.fromkeys(d for r in runs for d in r.coords))
    union = {d: pd.Index(np.concatenate([r.coords[d] for r in runs if d in r.coords])).unique().sort_values()
             for d in dims}
    # Where each run's coordinate values sit in the union, per dim.
    positions = {key: {d: union[d].get_indexer(values) for d, values in run.coords.items()} for key, run in at.items()}
    has_coord = {d for r in runs for d in r.coords if d in r.logs.variables}

    names = list(dict.fromkeys(n for r in runs for n in r.logs.data_vars))
    lead_shape = tuple(len(v) for v in lead.values())
    token = tokenize(sorted(os.path.realpath(r.run_dir / LOG_STORE) for r in runs))  # store versions
    variables = {name: _combined_variable(name, at, positions, union, lead_dims, lead_shape, token) for name in names}

    per_run = {"run_dir": {k: str(r.run_dir) for k, r in at.items()},
               "git_commit": {k: str(r.logs.attrs.get("git_commit", "")) for k, r in at.items()}}
    for name, values in per_run.items():
        table = np.full(lead_shape, "", dtype=object)
        for key, value in values.items():
            table[key] = value
        variables[name] = xr.Variable(lead_dims, table.astype(str))

    coords = {**{dim: np.asarray(values) for dim, values in lead.items()},
              **{d: union[d].to_numpy() for d in dims if d in has_coord}}
    return xr.Dataset(variables, coords=coords, attrs=_shared_attrs(runs))


def _coordinate(values: list[Any]) -> list[Any]:
    """A leading dim's coordinate: its distinct values sorted; a run without the setting (None) sits at NaN
    (numbers) or "" (text), last."""
    present = sorted(set(v for v in values if v is not None))
    if None in values:
        present.append("" if present and isinstance(present[0], str) else np.nan)
    return present


def _missing_safe(value: Any) -> Any:
    """A coordinate value as a lookup key: None, NaN and "" of a missing setting are one key."""
    return None if missing_setting(value) else value


def _combined_variable(name: str, at: dict[tuple[int, ...], _Run], positions: dict[tuple[int, ...],
                       dict[str, np.ndarray]], union: dict[str, pd.Index], lead_dims: tuple[str, ...],
                       lead_shape: tuple[int, ...], token: str) -> xr.Variable:
    """Variable `name` of every run as one dask array (task, ablation, k, *grid settings, *dims), a chunk per run."""
    having = {key: run.logs.variables[name] for key, run in at.items() if name in run.logs.variables}
    first = next(iter(having.values()))
    dims = first.dims  # the same in every run (_drop_inconsistent_variables)
    sources = {key: (variable, tuple(positions[key][d] for d in dims)) for key, variable in having.items()}
    dtype, fill = _fill_for([variable.dtype for variable in having.values()])
    inner_shape = tuple(len(union[d]) for d in dims)

    def block(block_id: tuple[int, ...]) -> np.ndarray:
        out = np.full((1,) * len(lead_dims) + inner_shape, fill, dtype)
        source = sources.get(tuple(block_id[:len(lead_dims)]))
        if source is not None:
            variable, where = source
            out.reshape(inner_shape)[np.ix_(*where)] = variable.values  # a view of `out`
        return out

    chunks = tuple((1,) * n for n in lead_shape) + tuple((n,) for n in inner_shape)
    data = da.map_blocks(block, chunks=chunks, dtype=dtype, meta=np.empty((0,) * len(chunks), dtype),
                         name=f"open_runs-{name}-{tokenize(token, chunks, dtype)}")
    attrs = {k: v for k, v in first.attrs.items() if k != "_FillValue"}
    return xr.Variable(lead_dims + dims, data, attrs=attrs)


def _shared_attrs(runs: list[_Run]) -> dict[str, Any]:
    """Store attrs every run holds with the same value, minus the per-run ones; format_version always."""
    first = runs[0].logs.attrs
    shared = {key: value for key, value in first.items() if key not in PER_RUN_ATTRS
              and all(key in r.logs.attrs and _same(r.logs.attrs[key], value) for r in runs[1:])}
    return {**shared, "format_version": FORMAT_VERSION}


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.array_equal(a, b)) if isinstance(a, (list, np.ndarray)) else bool(a == b)
    except Exception:  # noqa: BLE001 - values that cannot be compared count as different
        return False
