"""Open a sweep of run folders as one lazy xarray Dataset (docs/diagnostics.md, "Reading results"): the runs
laid side by side along leading dims task, ablation, k and one per swept grid setting, values left on disk (dask).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from drol_diag.runfolder.folders import LoggedRun, RunsError, SkippedRun, missing_setting, read_logged_runs
from drol_diag.runfolder.store import CHUNKS_COMPLETE_ATTR, FORMAT_VERSION, LOG_STORE

RUN_DIMS = ("task", "ablation", "k")  # then one dim per setting a sweep's grid varied (config.json's run.grid_settings)
# Store attrs that identify or describe one run; they become dims or per-run variables, never combined attrs.
PER_RUN_ATTRS = frozenset({"task", "ablation", "num_candidates", "run.task", "run.ablation", "task.name",
                           "learner.num_candidates", "git_commit", "command", CHUNKS_COMPLETE_ATTR})


class SkippedRunWarning(UserWarning):
    """A run among several was unreadable or of another log format and was left out."""


def open_runs(path: str | Path, *, read_values: bool = False) -> xr.Dataset:
    """Every run under `path` (one run folder, or any folder above run folders) as one lazy Dataset.

    Dims: `task`, `ablation`, `k`, one per setting a sweep's grid varied (config.json's run.grid_settings, in the
    order first met; each run at its own value, from its store's `learner.<name>` attr; NaN or "" where its
    method lacks it), then the store's own (`seed`, `step`, `eval_step`, `probe`, `candidate`, `layer`,
    `quantile`, `reference`); e.g. winner (task, ablation, k, seed, step, probe). The leading dims exist even
    at size 1, so code written on one folder runs on the next.
    - Outer join: each dim's coordinate is the sorted union over runs; what a run lacks is NaN, so integer and
      boolean variables become float64. `reference` has no coordinate: aligned by position, NaN-padded.
    - Lazy: one dask chunk per (run, variable); only metadata and coordinates are read here.
    - `load` shares its name with Dataset.load: write ds["load"].
    - Per run: variables `run_dir` and `git_commit` (task, ablation, k), "" where there is no run. attrs:
      `format_version` and each store attr every run holds with the same value (not the identity attrs).
    - Among several runs, one that cannot be read is left out with a SkippedRunWarning; attrs["skipped_runs"]
      lists them as "<run folder>: <reason>" (drol_diag.runfolder.folders.read_logged_runs decides).

    Raises FileNotFoundError when `path` holds no run folder with a `logs.zarr`; RunsError (one line) when the
    only run, or every run, cannot be read, or when two run folders are the same (task, ablation, K, grid point).
    """
    logs, skipped = read_runs(path, read_values=read_values)
    for run in skipped:
        warnings.warn(f"open_runs skipped run {run}", SkippedRunWarning, stacklevel=2)
    return logs


def read_runs(path: str | Path, *, read_values: bool = False) -> tuple[xr.Dataset, tuple[SkippedRun, ...]]:
    """`open_runs` without the warnings: the Dataset and the run folders left out, in folder order,
    for a caller that reports them itself (drol-diag report lists them in its inventory)."""
    runs, skipped = read_logged_runs(path, read_values)
    _check_distinct(runs)
    runs = _drop_inconsistent_variables(runs)
    combined = _combine(runs)
    combined.attrs["skipped_runs"] = [str(run) for run in skipped]
    return combined, tuple(skipped)


def _grid_dims(runs: list[LoggedRun]) -> list[str]:
    """The settings any run's sweep grid varied, in the order first met: each becomes a leading dim."""
    return list(dict.fromkeys(name for run in runs for name in run.grid))


def _run_key(run: LoggedRun, grid: list[str]) -> tuple:
    """The run's place on the leading dims: (task, ablation, k, its value of each grid setting)."""
    return (run.task, run.ablation, run.k, *(run.setting(name) for name in grid))


def _check_distinct(runs: list[LoggedRun]) -> None:
    seen: dict[tuple, Path] = {}
    grid = _grid_dims(runs)
    for run in runs:
        key = _run_key(run, grid)
        if key in seen:
            point = "".join(f", {name}={value}" for name, value in zip(grid, key[3:]))
            raise RunsError(f"runs {seen[key]} and {run.run_dir} are both task={run.task}, ablation={run.ablation}, "
                            f"K={run.k}{point}; open a folder that holds only one of them")
        seen[key] = run.run_dir


def _drop_inconsistent_variables(runs: list[LoggedRun]) -> list[LoggedRun]:
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


def _combine(runs: list[LoggedRun]) -> xr.Dataset:
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


def _combined_variable(name: str, at: dict[tuple[int, ...], LoggedRun], positions: dict[tuple[int, ...],
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


def _shared_attrs(runs: list[LoggedRun]) -> dict[str, Any]:
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
