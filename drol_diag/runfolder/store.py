"""The run folder on disk (its layout: docs/options.md): config.json, the growing xarray/zarr log, checkpoints.

Nothing is left half-written when a process is killed: files are written under a temporary name and renamed;
each log flush makes a fresh version folder under `.versions/` (hard links to the previous version's chunks plus
the appended rows) and swaps the `logs.zarr` symlink to it, so a reader always opens a complete store. Every
chunk is written, fill-only ones included, and the attr `chunks_complete_in` names the version folder so
written: a chunk file missing from it was lost (folders.missing_chunks).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from flax import serialization

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.msgpack"
VERSIONS_DIR = ".versions"
EXIT_BUSY = 3  # exit status of `drol-diag run` when another process holds the run folder's lock


class RunBusyError(ValueError):
    """Another process holds the run folder's lock (a one-line message naming it)."""


def lock_path(run_dir: Path) -> Path:
    """The lock file of a run folder: beside it, so deleting the folder (--force) keeps the lock."""
    return run_dir.parent / f".{run_dir.name}.lock"


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold the run folder's exclusive lock (flock) while training it; RunBusyError if another
    process holds it. The kernel releases the lock when the holder dies, even by SIGKILL."""
    path = lock_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunBusyError(f"run folder {run_dir} is being trained by {holder}; wait for it or choose "
                               "another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {os.uname().nodename}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def temporary_name(path: Path) -> Path:
    """A fresh name beside `path` for what becomes `path` by a rename (hidden: readers of the folder skip it)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_temporary(path: Path, data: bytes) -> Path:
    """Write `data`, flushed to disk, to a temporary file beside `path` and return its name (to os.replace)."""
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    os.replace(write_temporary(path, data), path)


def cannot_write_in(folder: Path) -> str | None:
    """Why nothing can be made in the existing `folder` (the system's words), or None: tried, as os.access says
    yes to root and on read-only or virtual file systems."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=folder))
    except OSError as error:
        return error.strerror or str(error)
    return None


def write_json_atomic(path: Path, obj: Any) -> None:
    """Atomically write `obj` as indented JSON."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def git_commit() -> str:
    """The commit of the drol-diag source tree, with '-dirty' for uncommitted changes; 'unknown' outside git."""
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on."""
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for name in ("drol-diag", "jax", "jaxlib", "flax", "optax", "numpy", "ogbench", "mujoco", "xarray", "zarr"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# ------------------------------------------------------------------------------------------
# The run log: one xarray Dataset per run, rows along `step` and `eval_step`; each flush publishes a new version.

LOG_STORE = "logs.zarr"
FORMAT_VERSION = 1  # attrs["format_version"] of the run log; readers refuse other versions
ROW_DIMS = ("step", "eval_step")
FLAT_CHUNK_KEYS = {"name": "v2", "separator": "."}  # chunk files side by side (a/0.3), not nested folders
# The store attr naming the version folder written with every chunk (zarr skips fill-only ones by default, so
# elsewhere a missing chunk file may be one); a copy rewritten by other code no longer matches its folder.
CHUNKS_COMPLETE_ATTR = "chunks_complete_in"


def step_chunking(dataset: xr.Dataset) -> dict[str, dict[str, Any]]:
    """One row (`step` or `eval_step`) per chunk, whole along every other dim, as flat files: a chunk never
    changes once written, so a reader of an older version's metadata reads the same bytes after the link moved."""
    return {name: {"chunks": tuple(1 if dim in ROW_DIMS else size for dim, size in var.sizes.items()),
                   "chunk_key_encoding": FLAT_CHUNK_KEYS}
            for name, var in dataset.variables.items() if var.dims}


def new_version(run_dir: Path, name: str) -> Path:
    """A fresh, unused version folder for store `name`."""
    versions = run_dir / VERSIONS_DIR
    versions.mkdir(exist_ok=True)
    return versions / f"{name}.{uuid.uuid4().hex[:12]}"


def publish_version(run_dir: Path, name: str, version: Path) -> None:
    """Point the `name` symlink at `version` atomically, then delete the versions before the one it replaced
    (kept until the next publish for a reader that resolved the link just before the swap)."""
    link = run_dir / name
    tmp_link = run_dir / f".{name}.{uuid.uuid4().hex}.tmplink"
    os.symlink(os.path.join(VERSIONS_DIR, version.name), tmp_link)
    previous = os.path.basename(os.readlink(link)) if link.is_symlink() else None
    os.replace(tmp_link, link)
    for entry in (run_dir / VERSIONS_DIR).glob(f"{name}.*"):
        if entry.name not in (version.name, previous):
            shutil.rmtree(entry, ignore_errors=True)


def link_version(source: Path, target: Path) -> None:
    """Copy a zarr store as hard links of its (immutable) chunk files and copies of its metadata."""
    for root, _, files in os.walk(source):
        folder = target / os.path.relpath(root, source)
        folder.mkdir(parents=True, exist_ok=True)
        for file in files:
            (shutil.copy2 if file == "zarr.json" else os.link)(os.path.join(root, file), folder / file)


def consolidate(version: Path) -> None:
    """Consolidate a finished store version's metadata (one read to open it; zarr 3's warning that the
    specification lacks it is expected and silenced)."""
    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(str(version))


def write_store(run_dir: Path, name: str, dataset: xr.Dataset) -> None:
    """Write `dataset` whole as the new version of store `name` (metadata consolidated) and publish it."""
    version = new_version(run_dir, name)
    dataset.assign_attrs({CHUNKS_COMPLETE_ATTR: version.name}).to_zarr(
        version, mode="w-", consolidated=False, encoding=step_chunking(dataset), write_empty_chunks=True)
    consolidate(version)
    publish_version(run_dir, name, version)


def read_store(run_dir: Path, name: str = LOG_STORE) -> xr.Dataset | None:
    """Load a store fully into memory (None if it was never written)."""
    path = run_dir / name
    if not path.exists():
        return None
    with xr.open_zarr(path, consolidated=False) as ds:
        return ds.load()


def remove_stale_versions(run_dir: Path) -> None:
    """Delete version folders no store link points to (left by a process killed mid-flush)."""
    versions = run_dir / VERSIONS_DIR
    if not versions.is_dir():
        return
    live = {os.path.basename(os.readlink(p)) for p in run_dir.iterdir() if p.is_symlink()}
    for entry in versions.iterdir():
        if entry.name not in live:
            shutil.rmtree(entry, ignore_errors=True)


def flatten_attrs(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'learner': {'lr': 3e-4}} -> {'learner.lr': 3e-4}; lists and tuples become JSON strings."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(flatten_attrs(value, f"{prefix}{key}."))
        elif isinstance(value, (list, tuple)):
            flat[f"{prefix}{key}"] = json.dumps(value, default=_json_default)
        elif value is None:
            flat[f"{prefix}{key}"] = "None"
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class Writer:
    """A run's disk writes (log flushes, checkpoints) in the order submitted, on one background thread, so that
    training goes on while they are written. After a write fails none of the later ones runs, and `submit` and
    `wait` raise its error."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drol-diag-writer")
        self._error: BaseException | None = None
        self._last = None  # the newest write's future: one thread runs them in order, so it finishes last

    def _run(self, write: Callable[..., None], args: tuple) -> None:
        if self._error is None:
            try:
                write(*args)
            except BaseException as error:  # (kept for the main thread, which raises it)
                self._error = error

    def submit(self, write: Callable[..., None], *args: Any) -> None:
        """Queue `write(*args)`; the arguments must not change afterwards (pass copies)."""
        self._raise()
        self._last = self._pool.submit(self._run, write, args)

    def wait(self) -> None:
        """Return once every queued write is on disk; raise the error of one that failed."""
        if self._last is not None:
            self._last.result()
        self._raise()

    def close(self) -> None:
        """wait(), then stop the thread (also when wait raises)."""
        try:
            self.wait()
        finally:
            self._pool.shutdown()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


class RunLog:
    """The run's log: static variables plus rows {name: array (S, ...)} along `step` and `eval_step`, with dims
    (seed, row dim, *row_dims[name]) (diagnostics.quantities.row_dims())."""

    def __init__(self, run_dir: Path, seeds: list[int], attrs: dict[str, Any],
                 static: dict[str, tuple[tuple[str, ...], np.ndarray]] | None = None,
                 row_dims: dict[str, tuple[str, ...]] | None = None):
        self.run_dir, self.seeds = run_dir, list(seeds)
        self.row_dims = dict(row_dims or {})
        self.attrs = {**attrs, "format_version": FORMAT_VERSION}
        self.static = xr.Dataset({name: (dims, np.asarray(value)) for name, (dims, value) in (static or {}).items()},
                                 coords={"seed": np.asarray(self.seeds)})
        self.written: dict[str, xr.Dataset | None] = {dim: None for dim in ROW_DIMS}
        self.pending: dict[str, list[tuple[int, dict[str, np.ndarray]]]] = {dim: [] for dim in ROW_DIMS}
        self.rewrite = not (run_dir / LOG_STORE).is_symlink()  # the next flush writes the store whole

    def load(self, up_to_step: int, step_interval: int) -> xr.Dataset | None:
        """Resume: keep the rows on disk up to `up_to_step`, the `step` rows only at multiples of `step_interval`
        (a final row off that grid belonged to the leg that ended there); the kept rows, or None."""
        existing = read_store(self.run_dir)
        if existing is None:
            return None
        self.rewrite = True  # (rows after up_to_step are dropped)
        for dim in ROW_DIMS:
            if dim in existing.dims:
                names = [n for n, v in existing.data_vars.items() if dim in v.dims]
                keep = existing[dim] <= up_to_step
                if dim == "step":
                    keep &= existing[dim] % step_interval == 0
                rows = existing[names].sel({dim: keep})
                self.written[dim] = rows.drop_vars([c for c in rows.coords if c not in rows.dims or c == "seed"])
        return self.dataset()

    def append(self, dim: str, step: int, row: dict[str, np.ndarray]) -> None:
        """Add one row {name: array (S, ...)} at `step` along `dim` ('step' or 'eval_step')."""
        self.pending[dim].append((int(step), row))

    def _pending_rows(self, dim: str) -> xr.Dataset | None:
        """The rows along `dim` not yet written, as a Dataset (None if there are none)."""
        rows = self.pending[dim]
        if not rows:
            return None
        data = {name: (("seed", dim, *self._trailing_dims(name, rows[0][1][name])),
                       np.stack([np.asarray(r[name]) for _, r in rows], 1)) for name in rows[0][1]}
        return xr.Dataset(data, coords={dim: np.asarray([s for s, _ in rows], np.int64)})

    def _trailing_dims(self, name: str, value: np.ndarray) -> tuple[str, ...]:
        """The dims of `name` beyond (seed, row dim); ValueError naming the registry for an undeclared one."""
        dims = self.row_dims.get(name, ())
        if np.ndim(value) != 1 + len(dims):
            raise ValueError(f"logged variable {name!r} has shape {np.shape(value)} (seed first) but its declared "
                             f"trailing dims are {dims}; declare them in diagnostics.quantities.QUANTITIES")
        return dims

    def _rows(self, dim: str) -> xr.Dataset | None:
        """All rows along `dim`, written and pending."""
        old, new = self.written[dim], self._pending_rows(dim)
        if old is None or new is None:
            return new if old is None else old
        return xr.concat([old, new], dim=dim, data_vars="all", join="outer")

    def dataset(self) -> xr.Dataset:
        """Everything logged so far (pending rows included) as one Dataset."""
        parts = [self.static] + [rows for rows in (self._rows(d) for d in ROW_DIMS) if rows is not None]
        merged = xr.merge(parts, join="outer", compat="override")
        return merged.assign_coords(seed=np.asarray(self.seeds)).assign_attrs(self.attrs)

    def flush(self, writer: Writer | None = None) -> None:
        """Write the pending rows, if any: a new version of hard links to the previous chunks plus the new rows
        (the first flush, and the first after a resume that dropped rows, writes the store whole). With a
        `writer`, on its thread: the rows are taken now, the caller goes on."""
        if not any(self.pending.values()):
            return
        new_rows = {dim: self._pending_rows(dim) for dim in ROW_DIMS}
        for dim in ROW_DIMS:
            self.written[dim] = self._rows(dim)
            self.pending[dim] = []
        if self.rewrite:
            write, args = write_store, (self.run_dir, LOG_STORE, self.dataset())
            self.rewrite = False
        else:
            write, args = self._append, ({dim: rows for dim, rows in new_rows.items() if rows is not None},)
        if writer is None:
            write(*args)
        else:
            writer.submit(write, *args)

    def _append(self, new_rows: dict[str, xr.Dataset]) -> None:
        """A new version of the published store with `new_rows` {row dim: rows} appended, published."""
        link = self.run_dir / LOG_STORE
        version = new_version(self.run_dir, LOG_STORE)
        link_version(link.resolve(), version)
        with xr.open_zarr(version, consolidated=False) as on_disk:
            existing = set(on_disk.data_vars)
        for dim, rows in new_rows.items():
            rows = rows.drop_vars([c for c in rows.coords if c != dim]).assign_attrs(
                {**self.attrs, CHUNKS_COMPLETE_ATTR: version.name})
            if set(rows.data_vars) <= existing:
                rows.to_zarr(version, append_dim=dim, consolidated=False, write_empty_chunks=True)
            else:  # this row dim's first rows: new variables
                rows.to_zarr(version, mode="a", consolidated=False, encoding=step_chunking(rows),
                             write_empty_chunks=True)
        consolidate(version)
        publish_version(self.run_dir, LOG_STORE, version)


# ------------------------------------------------------------------------------------------
# Checkpoints of the whole training state of every seed, plus the host-side bookkeeping needed to resume.

def save_checkpoint(run_dir: Path, state: Any, extra: dict[str, Any]) -> None:
    """Atomically save a pytree `state` (device or host arrays) and JSON-able `extra`."""
    payload = {"state": serialization.to_state_dict(_to_host(state)), "extra": json.dumps(extra, default=_json_default)}
    write_bytes_atomic(run_dir / CHECKPOINT_FILE, serialization.msgpack_serialize(payload))


def load_checkpoint(run_dir: Path, template: Any) -> tuple[Any, dict[str, Any]] | None:
    """Restore the state saved by `save_checkpoint` into the structure of `template` (None if absent)."""
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        return None
    with open(path, "rb") as f:
        payload = serialization.msgpack_restore(f.read())
    state = serialization.from_state_dict(_to_host(template), payload["state"])
    return state, json.loads(payload["extra"])


def _to_host(tree: Any) -> Any:
    import jax

    return jax.tree.map(np.asarray, tree)
