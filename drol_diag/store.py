"""The run folder on disk: config.json, growing xarray/zarr logs, and whole-state checkpoints.

Layout of one run (task, ablation, K), several seeds inside:

    <out>/<task>/<ablation>-k<K>/
        config.json          resolved configs, package versions, git commit, command
        metrics.zarr         per (seed, step): training losses and values (a symlink, see below)
        evals.zarr           per (seed, step): evaluation score and episode statistics
        checkpoint.msgpack   the whole training state of every seed at its last checkpoint
        summary.json         written when the run finishes

Nothing is left half-written when a process is killed: files are written under a temporary
name and renamed; a log store is rewritten whole into a fresh version folder under
`.versions/` and the `metrics.zarr` symlink is swapped atomically to it, so a reader always
opens a complete store holding every row up to the last flush. Stores are chunked one `step`
row per chunk (see `step_chunking`), which makes reading while a run writes safe.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from flax import serialization

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.msgpack"
METRICS_STORE = "metrics.zarr"
EVALS_STORE = "evals.zarr"
VERSIONS_DIR = ".versions"


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
# Log stores: an xarray Dataset with dims (seed, step), rewritten whole at each flush.


def write_store(run_dir: Path, name: str, dataset: xr.Dataset) -> None:
    """Write `dataset` as the new version of store `name` and swap the symlink to it atomically."""
    versions = run_dir / VERSIONS_DIR
    versions.mkdir(exist_ok=True)
    version = versions / f"{name}.{uuid.uuid4().hex[:12]}"
    dataset.to_zarr(version, mode="w-", consolidated=False, encoding=step_chunking(dataset))
    link = run_dir / name
    tmp_link = run_dir / f".{name}.{uuid.uuid4().hex}.tmplink"
    os.symlink(os.path.join(VERSIONS_DIR, version.name), tmp_link)
    previous = os.readlink(link) if link.is_symlink() else None
    os.replace(tmp_link, link)
    if previous is not None:
        shutil.rmtree(run_dir / previous, ignore_errors=True)


def step_chunking(dataset: xr.Dataset) -> dict[str, dict[str, tuple[int, ...]]]:
    """Explicit chunks: one `step` row per chunk, whole along every other dim.

    A chunk, once written, never changes and every new version holds all chunks of the one
    before, so a reader that opened an older version's metadata reads identical bytes after
    the link has moved on.
    """
    return {name: {"chunks": tuple(1 if dim == "step" else size for dim, size in var.sizes.items())}
            for name, var in dataset.variables.items() if "step" in var.dims}


def read_store(run_dir: Path, name: str) -> xr.Dataset | None:
    """Load store `name` fully into memory (None if it was never written)."""
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


def rows_to_dataset(rows: list[dict[str, np.ndarray]], steps: list[int], seeds: list[int],
                    attrs: dict[str, Any] | None = None) -> xr.Dataset:
    """Stack per-flush rows ({name: array (S,)}) at `steps` into a Dataset with dims (seed, step)."""
    names = list(rows[0])
    data = {name: (("seed", "step"), np.stack([np.asarray(r[name]) for r in rows], axis=1)) for name in names}
    return xr.Dataset(data, coords={"seed": np.asarray(seeds), "step": np.asarray(steps, np.int64)}, attrs=attrs or {})


class LogStore:
    """A growing (seed, step) log, kept in memory and flushed whole to `run_dir/name`."""

    def __init__(self, run_dir: Path, name: str, seeds: list[int], attrs: dict[str, Any] | None = None):
        self.run_dir, self.name, self.seeds, self.attrs = run_dir, name, list(seeds), attrs or {}
        self.dataset: xr.Dataset | None = None
        self.pending_rows: list[dict[str, np.ndarray]] = []
        self.pending_steps: list[int] = []

    def load(self, up_to_step: int) -> None:
        """Resume: load what is on disk, keeping the rows at steps <= up_to_step."""
        existing = read_store(self.run_dir, self.name)
        if existing is not None:
            self.dataset = existing.sel(step=existing.step <= up_to_step)

    def append(self, step: int, row: dict[str, np.ndarray]) -> None:
        """Add one row: {name: array (S,)} at `step`."""
        self.pending_rows.append(row)
        self.pending_steps.append(int(step))

    def flush(self) -> None:
        """Write every row so far (a no-op when nothing is pending)."""
        if not self.pending_rows:
            return
        new = rows_to_dataset(self.pending_rows, self.pending_steps, self.seeds, self.attrs)
        self.dataset = new if self.dataset is None else xr.concat([self.dataset, new], dim="step",
                                                                    data_vars="all", join="outer")
        write_store(self.run_dir, self.name, self.dataset)
        self.pending_rows, self.pending_steps = [], []


# ------------------------------------------------------------------------------------------
# Checkpoints of the whole training state (params, optimiser states, target params, keys,
# step, divergence flags) of every seed, plus the host-side bookkeeping needed to resume.


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
