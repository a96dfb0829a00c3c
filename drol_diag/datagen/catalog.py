"""The datasets drol-diag knows: whether each is on disk, and the command that makes or fetches a missing one
(`drol-diag data list`); and what a dataset file holds (`drol-diag data info`)."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import numpy as np

from drol_diag.datagen.files import dataset_paths
from drol_diag.datagen.recipes import OFFICIAL_ONLY, RECIPES
from drol_diag.tasks.ogbench import OGBENCH_URL

GENERATE, OFFICIAL, MINARI = "generate", "official", "minari"  # where a dataset comes from


@dataclass(frozen=True)
class CatalogEntry:
    """One dataset and its state on disk."""

    name: str  # OGBench dataset name, or D4RL name for Minari datasets
    source: str  # GENERATE (drol-diag makes it), OFFICIAL (copy the official files) or MINARI
    status: str  # present, missing, or incomplete (...)
    size_bytes: int  # bytes on disk (0 when missing)
    get_command: str  # the command that makes or fetches it
    minari_id: str | None = None  # Minari datasets: the Minari id

    @property
    def present(self) -> bool:
        return self.status == "present"


def get_command(name: str, folder: str) -> str:
    """How to make (generatable) or fetch (official only, on a machine with network) an OGBench dataset."""
    if name in RECIPES:
        return f"drol-diag data generate {name}"
    return f"wget -P {folder} {OGBENCH_URL}{name}.npz {OGBENCH_URL}{name}-val.npz"


def _ogbench_entry(name: str, source: str, folder: str) -> CatalogEntry:
    paths = dataset_paths(name, folder)
    present = [os.path.isfile(path) for path in paths]
    if all(present):
        status = "present"
    elif any(present):
        status = f"incomplete (no {os.path.basename(paths[present.index(False)])})"
    else:
        status = "missing"
    size = sum(os.path.getsize(path) for path, here in zip(paths, present) if here)
    return CatalogEntry(name, source, status, size, get_command(name, folder))


def _folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, file)) for root, _, files in os.walk(path) for file in files)


def minari_entries() -> tuple[list[CatalogEntry], str | None]:
    """(the Minari D4RL datasets, Minari's data folder); ([], None) without drol_diag.tasks.minari."""
    try:
        from drol_diag.tasks.minari import D4RL_NAMES, minari_dataset_path, minari_root
    except ImportError:
        return [], None
    entries = []
    for d4rl_name, minari_id in D4RL_NAMES.items():
        path = minari_dataset_path(minari_id)
        entries.append(CatalogEntry(d4rl_name, MINARI, "present" if path else "missing",
                                    _folder_bytes(path) if path else 0, f"minari download {minari_id}", minari_id))
    return entries, minari_root()


def catalog(folder: str) -> list[CatalogEntry]:
    """Every OGBench dataset drol-diag knows, generatable ones first, with its state in `folder`."""
    return ([_ogbench_entry(name, GENERATE, folder) for name in RECIPES]
            + [_ogbench_entry(name, OFFICIAL, folder) for name in OFFICIAL_ONLY])


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.1f} MB" if size_bytes else ""


def format_catalog(folder: str) -> list[str]:
    """The `drol-diag data list` lines."""
    entries = catalog(folder)
    minari, minari_folder = minari_entries()
    width = max(len(entry.name) for entry in entries + minari)
    lines = [f"OGBench datasets in {folder}:", "  generated here by drol-diag (ogbench's environments and oracles):"]

    def row(entry: CatalogEntry) -> str:
        action = "" if entry.present else entry.get_command
        return f"    {entry.name:<{width}}  {entry.status:<9}  {_size(entry.size_bytes):>9}  {action}".rstrip()

    lines += [row(entry) for entry in entries if entry.source == GENERATE]
    lines.append("  official files only (expert policies or recipes not shipped; fetch on a machine with network, "
                 "then copy into the folder):")
    lines += [row(entry) for entry in entries if entry.source == OFFICIAL]
    if minari_folder is None:
        lines.append("Minari D4RL datasets: not available (drol_diag.tasks.minari is missing)")
    else:
        lines.append(f"Minari D4RL datasets in {minari_folder} (D4RL name -> Minari id):")
        for entry in minari:
            action = entry.minari_id if entry.present else entry.get_command
            lines.append(f"    {entry.name:<{width}}  {entry.status:<9}  {_size(entry.size_bytes):>9}  {action}")
    present = sum(entry.present for entry in entries + minari)
    lines.append(f"{present} of {len(entries) + len(minari)} present")
    return lines


# --------------------------------------------------------------------------------------------
# data info


@dataclass(frozen=True)
class ArrayStats:
    """Per-dimension statistics of a (rows, dims) array (float64)."""

    minimum: np.ndarray  # (dims,)
    maximum: np.ndarray  # (dims,)
    mean: np.ndarray  # (dims,)
    std: np.ndarray  # (dims,)


@dataclass(frozen=True)
class DatasetInfo:
    """What an OGBench dataset's files hold."""

    name: str
    train_path: str
    val_path: str
    train_bytes: int
    val_bytes: int
    shapes: dict[str, tuple[tuple[int, ...], str]]  # key -> (shape, dtype) in the training file
    episodes: int  # training episodes (terminals set)
    episode_lengths: tuple[int, int]  # (shortest, longest) episode in rows
    transitions: int  # training transitions the loader yields (rows minus episode ends)
    val_episodes: int
    val_rows: int
    actions: ArrayStats
    observations: ArrayStats


def _array_stats(array: np.ndarray) -> ArrayStats:
    return ArrayStats(array.min(axis=0).astype(np.float64), array.max(axis=0).astype(np.float64),
                      array.mean(axis=0, dtype=np.float64), array.std(axis=0, dtype=np.float64))


def _episode_lengths(terminals: np.ndarray) -> np.ndarray:
    ends = np.flatnonzero(terminals)
    return np.diff(np.concatenate([[-1], ends]))


def dataset_info(name: str, folder: str) -> DatasetInfo:
    """Read <folder>/<name>.npz (and the episode count of <name>-val.npz); ValueError (one line) otherwise."""
    if name not in RECIPES and name not in OFFICIAL_ONLY:
        families = sorted({"-".join(n.split("-")[:-2]) for n in (*RECIPES, *OFFICIAL_ONLY)})
        raise ValueError(f"unknown OGBench dataset {name!r}; valid names are <family>-<type>-v0 with family one of "
                         f"{', '.join(families)}, e.g. cube-single-play-v0 (drol-diag data list shows them all)")
    train_path, val_path = dataset_paths(name, folder)
    missing = [path for path in (train_path, val_path) if not os.path.isfile(path)]
    if missing:
        raise ValueError(f"missing {' and '.join(missing)}; get it with `{get_command(name, folder)}`")
    try:
        with np.load(train_path, allow_pickle=False) as train:
            shapes = {}
            for key in train.files:
                with train.zip.open(f"{key}.npy") as member:
                    read_header = (np.lib.format.read_array_header_1_0 if np.lib.format.read_magic(member) == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member)
                shapes[key] = (tuple(shape), str(dtype))
            terminals = train["terminals"].astype(bool)
            actions, observations = train["actions"], train["observations"]
        with np.load(val_path, allow_pickle=False) as validation:
            val_terminals = validation["terminals"].astype(bool)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        problem = str(error).replace("\n", " ") or type(error).__name__
        raise ValueError(f"bad OGBench dataset file in {folder} for {name}: {problem}") from error
    lengths = _episode_lengths(terminals) if terminals.any() else np.zeros(1, int)
    return DatasetInfo(name, train_path, val_path, os.path.getsize(train_path), os.path.getsize(val_path), shapes,
                       int(terminals.sum()), (int(lengths.min()), int(lengths.max())),
                       int(len(terminals) - terminals.sum()), int(val_terminals.sum()), len(val_terminals),
                       _array_stats(actions), _array_stats(observations))


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def format_info(info: DatasetInfo) -> list[str]:
    """The `drol-diag data info` lines."""
    shortest, longest = info.episode_lengths
    length = f"{shortest} rows" if shortest == longest else f"{shortest}-{longest} rows"
    lines = [
        f"{info.name}",
        (f"  train: {info.train_path} ({info.train_bytes / 1e6:.1f} MB): "
        f"{_plural(info.episodes, 'episode')} of {length}, "
        f"{info.transitions:,} transitions (the loader drops each episode's last row)"),
        (f"  validation: {info.val_path} ({info.val_bytes / 1e6:.1f} MB): {_plural(info.val_episodes, 'episode')}, "
        f"{info.val_rows:,} rows"),
        "  arrays: " + ", ".join(f"{key} {shape} {dtype}" for key, (shape, dtype) in info.shapes.items()),
        f"  action range: [{info.actions.minimum.min():.3f}, {info.actions.maximum.max():.3f}]",
        "  actions per dimension:     min      max     mean      std",
    ]
    for dim, values in enumerate(zip(info.actions.minimum, info.actions.maximum, info.actions.mean,
                                     info.actions.std)):
        lines.append(f"    {dim:>3}  " + "".join(f"{value:>9.3f}" for value in values))
    lines.append("  observations per dimension:  mean      std")
    for dim, (mean, std) in enumerate(zip(info.observations.mean, info.observations.std)):
        lines.append(f"    {dim:>3}  {mean:>9.3f}{std:>9.3f}")
    return lines
