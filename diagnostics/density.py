"""A learned behaviour density log pi_beta(a | s) per dataset: a conditional masked-autoregressive flow with
rational-quadratic spline transforms (flowjax) on standardised states and actions, fitted once by maximum
likelihood on the training split and cached by the dataset's content and the fit's settings. Chosen by measurement
over affine transforms (unimodal per dimension: half the held-out log-likelihood on modes-2d) and the flow-matching
BC network with its probability-flow log-likelihood (worse on modes-2d, 2 to 6 times dearer per evaluation):
docs/diagnostics.md, "The behaviour density". Shapes: N pairs, obs state dims, d action dims.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from drol_diag.platform import DENSITY_CACHE_VARIABLE, optimised_compile, user_cache_folder
from drol_diag.programs import KeptProgram
from drol_diag.runfolder.store import write_bytes_atomic

CACHE_FORMAT = "drol-diag behaviour density 1"  # the cache file's format tag
EVAL_ROWS = 4096  # pairs per compiled log-density call (a fixed shape: one program)


class DensityError(ValueError):
    """A fit or a cache that cannot be used: one line naming the problem and the remedy."""


@dataclass(frozen=True)
class DensitySettings:
    """The flow and its fit (a cache holds one fit per dataset and settings)."""

    flow_layers: int = 4  # autoregressive layers, their order permuted between layers
    knots: int = 5  # spline knots per dimension (8 fit no better on arc-21d and modes-2d, 20% slower)
    interval: float = 4.0  # the splines act on [-4, 4] standard deviations; identity beyond
    width: int = 64  # hidden width of each layer's masked MLP (measured: 128 and depth 2 fit no better)
    depth: int = 1  # hidden layers of each masked MLP
    steps: int = 1000  # Adam updates (2000 gain under 0.01 nats/dim on arc-21d, at twice the time)
    batch_size: int = 256  # pairs per update
    learning_rate: float = 1e-3
    seed: int = 0  # the flow's initialisation and the fit's batches
    min_rows: int = 1024  # fewer training pairs: too few to fit (4 batches)


@functools.lru_cache(maxsize=16)
def _flow(settings: DensitySettings, obs_dim: int, action_dim: int):
    """The untrained conditional flow (an immutable equinox module; built once per process: its construction
    traces a vmap)."""
    from flowjax.bijections import RationalQuadraticSpline
    from flowjax.distributions import Normal
    from flowjax.flows import masked_autoregressive_flow

    return masked_autoregressive_flow(jax.random.key(settings.seed), base_dist=Normal(jnp.zeros(action_dim)),
                                      transformer=RationalQuadraticSpline(knots=settings.knots,
                                                                          interval=settings.interval),
                                      cond_dim=obs_dim, flow_layers=settings.flow_layers, nn_width=settings.width,
                                      nn_depth=settings.depth)


def _split(flow) -> tuple[Any, Callable[[Any, jnp.ndarray, jnp.ndarray], jnp.ndarray]]:
    """(trainable arrays, log_prob(arrays, standardised actions (N, d), standardised states (N, obs)) -> (N,))."""
    import equinox as eqx
    import paramax

    arrays, static = eqx.partition(flow, eqx.is_inexact_array)
    return arrays, lambda arrays, x, c: paramax.unwrap(eqx.combine(arrays, static)).log_prob(x, condition=c)


@functools.lru_cache(maxsize=16)
def log_prob_program(settings: DensitySettings, obs_dim: int, action_dim: int) -> KeptProgram:
    """The compiled log-density of a flow of these settings and sizes, in the data's units: (arrays, obs_mean,
    obs_scale, action_mean, action_scale, observations (N, obs), actions (N, d)) -> (N,); one per process, kept
    across processes (drol_diag.programs), so a density read again from the cache traces nothing."""
    def make_log_density(_):
        _, log_prob = _split(_flow(settings, obs_dim, action_dim))
        return lambda arrays, obs_mean, obs_scale, action_mean, action_scale, o, a: log_prob(
            arrays, (a - action_mean) / action_scale, (o - obs_mean) / obs_scale) - jnp.sum(jnp.log(action_scale))
    return KeptProgram("density_log_prob", (settings, obs_dim, action_dim), make_log_density)


def _arrays_shapes(settings: DensitySettings, obs_dim: int, action_dim: int) -> Any:
    """The tree of the flow's trainable arrays as jax.ShapeDtypeStruct leaves (nothing built: the eager
    construction costs 0.4 s a process)."""
    import equinox as eqx

    shapes = eqx.filter_eval_shape(_flow.__wrapped__, settings, obs_dim, action_dim)
    return eqx.partition(shapes, lambda leaf: isinstance(leaf, jax.ShapeDtypeStruct)
                         and jnp.issubdtype(leaf.dtype, jnp.inexact))[0]


@dataclass
class BehaviourDensity:
    """A fitted density: log_prob(observations (N, obs), actions (N, d)) -> (N,) nats, in the data's units."""

    settings: DensitySettings
    arrays: Any  # the flow's fitted arrays (a pytree)
    obs_mean: np.ndarray  # (obs,) the training states' standardisation
    obs_scale: np.ndarray
    action_mean: np.ndarray  # (d,)
    action_scale: np.ndarray
    key: str  # dataset_key of the data and settings it was fitted on
    heldout_logp_per_dim: float  # mean held-out log-density over the action dims (nats)
    heldout_rows: int  # the pairs it was measured on (the validation split, else the training data)
    fit_seconds: float

    def log_prob(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Estimated log pi_beta(a | s) (N,) of pairs (N, obs), (N, d), float64."""
        program = log_prob_program(self.settings, len(self.obs_mean), len(self.action_mean))
        scales = tuple(jnp.asarray(x) for x in (self.obs_mean, self.obs_scale, self.action_mean, self.action_scale))
        observations, actions = np.asarray(observations, np.float32), np.asarray(actions, np.float32)
        n = len(actions)
        out = np.empty(n)
        for start in range(0, n, EVAL_ROWS):  # padded to EVAL_ROWS: one compiled shape
            o, a = observations[start:start + EVAL_ROWS], actions[start:start + EVAL_ROWS]
            pad = EVAL_ROWS - len(a)
            o, a = np.pad(o, ((0, pad), (0, 0))), np.pad(a, ((0, pad), (0, 0)))
            out[start:start + EVAL_ROWS] = np.asarray(program(self.arrays, *scales, o, a))[:EVAL_ROWS - pad]
        return out

    def summary(self) -> str:
        """'held-out log-likelihood 1.23 nats per action dim (2,000 pairs), fit 12.3 s'."""
        return (f"held-out log-likelihood {self.heldout_logp_per_dim:.3f} nats per action dim "
                f"({self.heldout_rows:,} pairs), fit {self.fit_seconds:.1f} s")


def dataset_key(dataset: dict[str, np.ndarray], settings: DensitySettings) -> str:
    """The cache key: a hash of the training states and actions (their bytes and shapes) and the settings."""
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(settings), sort_keys=True).encode())
    for name in ("observations", "actions"):
        array = np.ascontiguousarray(dataset[name], np.float32)
        digest.update(repr(array.shape).encode())
        digest.update(array.data)
    return digest.hexdigest()[:24]


def _standardisation(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(array, np.float64)
    return array.mean(0).astype(np.float32), np.maximum(array.std(0), 1e-6).astype(np.float32)


def fit_density(dataset: dict[str, np.ndarray], validation: dict[str, np.ndarray] | None,
                settings: DensitySettings = DensitySettings(),
                progress: Callable[[int, int], None] | None = None) -> BehaviourDensity:
    """Fit the flow to the training pairs (dataset: observations (N, obs), actions (N, d)) and measure it on the
    validation pairs (the training pairs where there are none). `progress(updates done, updates)` after each
    twentieth of them. DensityError for too few pairs or a fit whose loss stops being finite."""
    import optax

    rows = len(dataset["actions"])
    if rows < settings.min_rows:
        raise DensityError(f"the dataset has {rows:,} transitions; the behaviour density fit needs at least "
                           f"{settings.min_rows:,} (run with --density off)")
    started = time.perf_counter()
    obs_mean, obs_scale = _standardisation(dataset["observations"])
    action_mean, action_scale = _standardisation(dataset["actions"])
    states = jnp.asarray((np.asarray(dataset["observations"], np.float32) - obs_mean) / obs_scale)
    actions = jnp.asarray((np.asarray(dataset["actions"], np.float32) - action_mean) / action_scale)
    arrays, log_prob = _split(_flow(settings, states.shape[1], actions.shape[1]))
    optimizer = optax.adam(settings.learning_rate)
    loss = lambda arrays, rows: -jnp.mean(log_prob(arrays, actions[rows], states[rows]))

    @functools.partial(jax.jit, compiler_options=optimised_compile())  # (1000 updates: worth optimising)
    def updates(arrays, opt_state, keys):
        def update(carry, key):
            arrays, opt_state = carry
            value, grads = jax.value_and_grad(loss)(arrays, jax.random.randint(key, (settings.batch_size,), 0, rows))
            change, opt_state = optimizer.update(grads, opt_state, arrays)
            return (jax.tree.map(jnp.add, arrays, change), opt_state), value
        (arrays, opt_state), values = jax.lax.scan(update, (arrays, opt_state), keys)
        return arrays, opt_state, values

    opt_state = optimizer.init(arrays)
    chunks = 20
    keys = jax.random.split(jax.random.key(settings.seed + 1), settings.steps).reshape(chunks, -1)
    for chunk, chunk_keys in enumerate(keys):
        arrays, opt_state, values = updates(arrays, opt_state, chunk_keys)
        values = np.asarray(values)
        if not np.isfinite(values).all():
            step = chunk * len(chunk_keys) + int(np.argmin(np.isfinite(values)))
            raise DensityError(f"the behaviour density fit diverged (loss not finite at update {step:,} of "
                               f"{settings.steps:,}); the data may hold extreme values (run with --density off)")
        if progress is not None:
            progress((chunk + 1) * len(chunk_keys), settings.steps)
    held_out = validation if validation is not None and len(validation["actions"]) else dataset
    density = BehaviourDensity(settings, arrays, obs_mean, obs_scale, action_mean, action_scale,
                               dataset_key(dataset, settings), math.nan, len(held_out["actions"]), math.nan)
    heldout = density.log_prob(held_out["observations"], held_out["actions"])
    if not np.isfinite(heldout).all():
        raise DensityError("the behaviour density fit gives non-finite log-densities on held-out pairs; the data may "
                           "hold extreme values (run with --density off)")
    density.heldout_logp_per_dim = float(heldout.mean() / actions.shape[1])
    density.fit_seconds = time.perf_counter() - started
    return density


def cache_path(folder: Path, key: str) -> Path:
    return Path(folder) / f"density-{key}.npz"


def save_density(density: BehaviourDensity, path: Path) -> None:
    """Write the fit to `path` atomically (npz: the flow's arrays and a JSON header)."""
    header = {"format": CACHE_FORMAT, "key": density.key, "settings": dataclasses.asdict(density.settings),
              "heldout_logp_per_dim": density.heldout_logp_per_dim, "heldout_rows": density.heldout_rows,
              "fit_seconds": density.fit_seconds}
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(density.arrays)]
    buffer = io.BytesIO()
    np.savez(buffer, header=np.asarray(json.dumps(header)), obs_mean=density.obs_mean, obs_scale=density.obs_scale,
             action_mean=density.action_mean, action_scale=density.action_scale,
             **{f"leaf_{i}": leaf for i, leaf in enumerate(leaves)})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(Path(path), buffer.getvalue())


def load_density(path: Path, key: str) -> BehaviourDensity:
    """The fit cached at `path` for dataset_key `key`; DensityError for a corrupt, foreign or other dataset's file."""
    remedy = f"delete {path} and fit again (drol-diag density fit TASK)"
    try:
        with np.load(path, allow_pickle=False) as stored:
            files = {name: stored[name] for name in stored.files}
    except Exception as error:  # not a zip, truncated, object arrays: all unusable the same way
        raise DensityError(f"{path} is not a readable behaviour density cache ({type(error).__name__}); "
                           f"{remedy}") from None
    try:
        header = json.loads(str(files.pop("header")))
    except (KeyError, ValueError):
        header = None
    if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT:
        raise DensityError(f"{path} is not a drol-diag behaviour density cache; {remedy}")
    if header.get("key") != key:
        raise DensityError(f"{path} holds the density of another dataset or fit (key {header.get('key')}, this one "
                           f"{key}); {remedy}")
    settings = DensitySettings(**header["settings"])
    leaves, treedef = jax.tree.flatten(_arrays_shapes(settings, len(files["obs_mean"]), len(files["action_mean"])))
    stored_leaves = [files.get(f"leaf_{i}") for i in range(len(leaves))]
    if any(s is None or s.shape != leaf.shape for s, leaf in zip(stored_leaves, leaves)):
        raise DensityError(f"{path} does not match the flow its settings describe; {remedy}")
    return BehaviourDensity(settings, jax.tree.unflatten(treedef, [jnp.asarray(s) for s in stored_leaves]),
                            files["obs_mean"], files["obs_scale"], files["action_mean"], files["action_scale"], key,
                            header["heldout_logp_per_dim"], header["heldout_rows"], header["fit_seconds"])


def cache_folder() -> Path:
    """$DROL_DIAG_DENSITY_CACHE, else the user's cache folder for drol-diag's densities."""
    return Path(os.environ.get(DENSITY_CACHE_VARIABLE, "").strip() or user_cache_folder("density"))


def cached_density(dataset: dict[str, np.ndarray], validation: dict[str, np.ndarray] | None,
                   settings: DensitySettings = DensitySettings(), folder: Path | None = None,
                   progress: Callable[[int, int], None] | None = None) -> tuple[BehaviourDensity, bool]:
    """(the density of these data, whether it was fitted now): the cached fit when there is one, else a new fit,
    cached. DensityError as fit_density and load_density raise it."""
    key = dataset_key(dataset, settings)
    path = cache_path(folder or cache_folder(), key)
    stamp = lambda: (path, key, path.stat().st_mtime_ns, path.stat().st_size)  # (a file changed since: read again)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_suffix(".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a sweep's groups starting together: one fits, the others wait and read
        try:
            if path.exists():
                if stamp() not in _READ:  # read once per process: a second run in it compiles nothing new
                    _READ[stamp()] = load_density(path, key)
                return _READ[stamp()], False
            density = fit_density(dataset, validation, settings, progress)
            save_density(density, path)
        finally:
            lock_path.unlink(missing_ok=True)  # (a waiter that opened it still reads the saved fit, or fits)
    _READ[stamp()] = density
    return density, True


_READ: dict[tuple, BehaviourDensity] = {}  # cached_density's reads in this process, by file and its stamp
