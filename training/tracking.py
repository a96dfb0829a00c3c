"""Experiment tracking (`--wandb PROJECT`, an observer: training.observer): each seed of a run as its own
Weights & Biases run, fed the per-seed scalars of the rows just written to the run log (the source of truth):
`train/<name>`, `diagnostics/<name>`, `eval/<name>`. Naming, grouping, resuming through the run folder's
`wandb.json` and offline mode: docs/gpu-and-clusters.md. wandb is imported only here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import netrc
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import xarray as xr

from diagnostics.quantities import QUANTITIES
from drol.config import LearnerConfig
from drol_diag.runfolder import store
from drol_diag.runfolder.record import run_point
from drol_diag.settings import RunConfig
from training.observer import Chunk, Observer

WANDB_MISSING = "--wandb needs the wandb package: pip install 'drol-diag[wandb]'"
RECORD_FILE = "wandb.json"  # in the run folder: the W&B runs of its seeds and the last step they logged
PROJECT_FORBIDDEN = "/\\#?%:"  # characters W&B refuses in a project name
PROJECT_MAX_LENGTH = 128
DEFAULT_HOST = "https://api.wandb.ai"
# Logged variables W&B does not get: which evaluations count toward the score is marked again when a resume
# moves the run's end (run_log.LogRows), and W&B cannot change a step it holds.
NOT_TRACKED = frozenset({"eval_counted"})


def check_wandb(project: str) -> None:
    """Raise ValueError (one line) unless `project` is a valid W&B project name and wandb is installed
    (found without importing it)."""
    if not project.strip() or len(project) > PROJECT_MAX_LENGTH or any(c in project for c in PROJECT_FORBIDDEN):
        raise ValueError(f"--wandb {project!r} is not a W&B project name: 1 to {PROJECT_MAX_LENGTH} characters, "
                         f"none of {' '.join(PROJECT_FORBIDDEN)}")
    if importlib.util.find_spec("wandb") is None:
        raise ValueError(WANDB_MISSING)


def credentials_configured(environ: Mapping[str, str]) -> bool:
    """Whether W&B credentials are configured: in the environment, or for the W&B host in the netrc file."""
    if environ.get("WANDB_API_KEY") or environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(environ.get("WANDB_BASE_URL") or DEFAULT_HOST).netloc
    path = environ.get("NETRC") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".netrc")
    try:
        return bool(host) and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(environ: Mapping[str, str]) -> str | None:
    """The mode for wandb.init: None (wandb decides: WANDB_MODE, else online) where WANDB_MODE is set or
    credentials are configured, else "offline"."""
    return None if environ.get("WANDB_MODE") or credentials_configured(environ) else "offline"


def metric_key(dim: str, name: str) -> str:
    """The W&B key of a logged variable: eval/<name>, diagnostics/<name> or train/<name>."""
    if dim == "eval_step":
        return "eval/" + name.removeprefix("eval_")
    return ("diagnostics/" if name in QUANTITIES else "train/") + name


def seed_scalars(rows: Mapping[str, Mapping[str, np.ndarray]], index: int) -> dict[str, float | bool]:
    """One seed's scalars of the rows logged at one step {dim: {name: array (S, ...)}}: every (S,) variable but
    NOT_TRACKED at seed `index`, under metric_key."""
    scalars: dict[str, float | bool] = {}
    for dim, row in rows.items():
        for name, values in row.items():
            values = np.asarray(values)
            if values.ndim == 1 and name not in NOT_TRACKED:
                value = values[index]
                scalars[metric_key(dim, name)] = bool(value) if values.dtype == bool else float(value)
    return scalars


def logged_rows(logged: xr.Dataset) -> list[tuple[int, dict[str, dict[str, np.ndarray]]]]:
    """The rows of a run log (store.RunLog.dataset()) as the driver hands them over: [(step, {dim: {name: (S,)}})]
    in step order."""
    by_step: dict[int, dict[str, dict[str, np.ndarray]]] = {}
    for dim in store.ROW_DIMS:
        if dim not in logged.dims:
            continue
        names = [name for name, variable in logged.data_vars.items() if variable.dims == ("seed", dim)]
        values = {name: logged[name].values for name in names}  # (read once, not per step)
        for i, step in enumerate(logged[dim].values):
            by_step.setdefault(int(step), {})[dim] = {name: column[:, i] for name, column in values.items()}
    return sorted(by_step.items())


class WandbRuns(Observer):
    """The W&B runs of one run folder's seeds (see the module docstring)."""

    def __init__(self, project: str, run_dir: Path, config: dict[str, Any], seeds: list[int], name: str,
                 group: str, directory: Path):
        """Start (or resume) one W&B run per seed, `<name>/seed<seed>` in `group`; `config`: config.json's content."""
        import wandb  # (slow to import: only with --wandb)

        self.run_dir, self.path = Path(run_dir), Path(run_dir) / RECORD_FILE
        entity = os.environ.get("WANDB_ENTITY")
        previous = store.read_json(self.path) if self.path.exists() else None
        if previous and previous.get("project") == project and previous.get("entity") == entity \
                and previous.get("seeds") == list(seeds):
            self.record = previous
        else:  # (first tracked, or now to another project: new W&B runs, given every row the log holds)
            created = time.time_ns()  # (the folder started again, --force: other ids)
            ids = {str(seed): hashlib.sha256(f"{self.run_dir.resolve()}|{created}|{seed}".encode()).hexdigest()[:16]
                   for seed in seeds}
            self.record = {"project": project, "entity": entity, "seeds": list(seeds), "created": created,
                           "ids": ids, "logged_through": -1}
        self.runs = []
        try:
            for seed in seeds:
                self.runs.append(wandb.init(
                    project=project, id=self.record["ids"][str(seed)], name=f"{name}/seed{seed}",
                    group=os.environ.get("WANDB_RUN_GROUP") or group, config={**config, "seed": seed},
                    resume="allow", reinit="create_new", allow_val_change=True, mode=wandb_mode(os.environ),
                    dir=None if os.environ.get("WANDB_DIR") else str(directory),
                    settings=wandb.Settings(console="off", silent=True)))
        except BaseException:
            self.close(failed=True)
            raise
        self.disabled = all(run.settings.mode == "disabled" for run in self.runs)  # (WANDB_MODE=disabled)
        if not self.disabled:  # (disabled: nothing is sent, so nothing is recorded as sent)
            store.write_json_atomic(self.path, self.record)

    def log(self, step: int, rows: Mapping[str, Mapping[str, np.ndarray]], record: bool = True) -> None:
        """Log the rows written at `step` {dim: {name: array (S, ...)}} to each seed's W&B run, unless it holds the
        step. `record`: write wandb.json now (backfill writes it once)."""
        if step <= self.record["logged_through"] or not rows or self.disabled:
            return
        for index, run in enumerate(self.runs):
            run.log(seed_scalars(rows, index), step=step)
        self.record["logged_through"] = int(step)
        if record:
            store.write_json_atomic(self.path, self.record)

    def backfill(self, logged: xr.Dataset | None) -> None:
        """Log the rows of `logged` (what a resume kept) the W&B runs do not hold yet; then write wandb.json."""
        for step, rows in logged_rows(logged) if logged is not None else []:
            self.log(step, rows, record=False)
        if not self.disabled:
            store.write_json_atomic(self.path, self.record)

    def on_chunk(self, chunk: Chunk) -> None:
        self.log(chunk.step, chunk.rows)  # (after the run log's observer: W&B gets rows the log holds)

    def close(self, failed: bool = False) -> None:
        """Finish every W&B run (exit code 1 when the run failed), and say on stderr where offline runs are."""
        offline = [str(run.settings.sync_dir) for run in self.runs if run.settings.mode == "offline"]
        for run in self.runs:
            run.finish(exit_code=1 if failed else 0)
        if offline:
            print(f"wandb: {len(offline)} offline run{'s' * (len(offline) != 1)} in {os.path.dirname(offline[0])}; "
                  f"upload with: wandb sync {' '.join(offline)}", file=sys.stderr)


def start_tracking(run: RunConfig, learner_config: LearnerConfig, run_dir: Path, record: dict[str, Any],
                   log: store.RunLog) -> WandbRuns:
    """The W&B runs of the run's seeds, given the rows the log already holds that they lack. Raises ValueError
    (one line) when wandb cannot start them."""
    out = run_dir.parent.parent.resolve()  # (record.run_dir_for: <out>/<task>/<ablation>-k<K>)
    try:
        tracker = WandbRuns(run.wandb, run_dir, record, list(run.seeds),
                            "/".join([run.task, *run_point(run, learner_config)]), out.name, out)
    except Exception as error:  # noqa: BLE001  (wandb raises its own errors: no network, bad credentials, ...)
        raise ValueError(f"cannot start the W&B runs of --wandb {run.wandb}: "
                         f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None
    tracker.backfill(log.dataset())
    return tracker
