"""Traced programs kept across processes: a jitted function is traced and lowered once per code version, settings
and argument shapes (jax.export), its StableHLO kept beside JAX's compilation cache, and a later process reads it
back instead of tracing again (tracing and lowering are most of a warm-cache start: docs/extending.md). Every call
goes through the exported program, kept or not, so a run computes the same numbers either way.

A learner's float hyper-parameters (bc_coef, lr, tau, ...) are an argument of its programs, not constants in them:
runs that differ only in those (a bc_coef grid, calibration runs at two bc_coef) share one traced and one compiled
program.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from drol.learner import LearnerBase
from drol_diag.runfolder.store import write_bytes_atomic

KEPT_FORMAT = b"drol-diag kept program 1\n"  # a kept file's first line
ROOT = Path(__file__).resolve().parent.parent
CODE_PACKAGES = ("drol", "diagnostics", "training", "drol_diag")  # the sources a traced program can come from
TRACING_PACKAGES = ("jax", "jaxlib", "flax", "optax", "flowjax", "equinox", "paramax", "numpy")
TRACING_FLAGS = ("jax_default_matmul_precision", "jax_enable_x64", "jax_default_prng_impl",
                 "jax_threefry_partitionable")  # JAX settings a traced program depends on (the key holds them)


@functools.cache
def code_version() -> str:
    """A hash of the project's sources and the versions of the packages that trace its programs."""
    from importlib import metadata

    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name in TRACING_PACKAGES:
        try:
            digest.update(f"{name} {metadata.version(name)}\n".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name} -\n".encode())
    return digest.hexdigest()[:16]


def kept_folder() -> Path | None:
    """Where kept programs live: a folder in JAX's compilation cache (drol_diag.platform sets it); None: nowhere."""
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR", "").strip()
    return Path(folder) / "drol-diag-programs" if folder else None


def hyperparameters(settings: Any) -> dict[str, float]:
    """The float fields of the learner config in `settings` (a learner, or a tuple holding one): {name: value}."""
    learners = [item for item in (settings if isinstance(settings, tuple) else (settings,))
                if isinstance(item, LearnerBase)]
    return {field.name: getattr(learner.config, field.name) for learner in learners[:1]
            for field in dataclasses.fields(learner.config) if isinstance(field.default, float)}


def with_hyperparameters(settings: Any, values: dict[str, Any]) -> Any:
    """`settings` with its learner's hyper-parameters replaced by `values` (tracers, or None for the key)."""
    if isinstance(settings, tuple):
        return tuple(with_hyperparameters(item, values) for item in settings)
    if isinstance(settings, LearnerBase):
        return dataclasses.replace(settings, config=dataclasses.replace(settings.config, **values))
    return settings


class KeptProgram:
    """jax.jit(make_function(settings), donate_argnums) whose tracing is kept across processes under `settings` (a
    value whose repr determines everything the function closes over, e.g. a frozen learner dataclass; None: not
    kept). make_function is called only to trace, with the settings its function must read: a learner's float
    hyper-parameters there are tracers, kept out of the key and passed at every call. Call it as the jitted function,
    or .compile it."""

    def __init__(self, name: str, settings: Any, make_function: Callable[[Any], Callable],
                 donate_argnums: Sequence[int] = ()):
        hyper = hyperparameters(settings)
        self.name, self.make_function, self._settings = name, make_function, settings
        self.settings = None if settings is None else repr(with_hyperparameters(settings, dict.fromkeys(hyper)))
        self.hyper_names, self.hyper = tuple(hyper), np.asarray(list(hyper.values()), np.float32)  # (H,)
        self.donate_argnums = tuple(i + 1 for i in donate_argnums)  # (after the hyper-parameters)
        self._programs: dict[tuple, Any] = {}  # by argument structure and shapes: the jitted call of the export

    def __call__(self, *args):
        return self._program(args)(self.hyper, *args)

    def compile(self, *args, options: dict[str, Any] | None = None) -> Callable:
        """The program compiled for `args`' shapes with XLA `options` (jax.stages.Lowered.compile's)."""
        return functools.partial(self._program(args).lower(self.hyper, *args).compile(options), self.hyper)

    def _function(self, hyper, *args):
        """The function make_function gives for the settings with `hyper` (H,) as their hyper-parameters."""
        settings = with_hyperparameters(self._settings, dict(zip(self.hyper_names, hyper)))
        return self.make_function(settings)(*args)

    def _program(self, args: tuple):
        leaves, in_tree = jax.tree.flatten(args)
        signature = (in_tree, tuple(map(jax.typeof, leaves)))  # (hashable avals: a fifth of their str's cost a call)
        if signature not in self._programs:
            try:
                exported, out_tree = self._exported(args, signature)
            except (ValueError, NotImplementedError) as error:
                # not exportable or not serialisable here (a custom call jax.export does not allow, a host callback)
                if isinstance(error, ValueError) and "custom call" not in str(error).lower():
                    raise
                self._programs[signature] = jax.jit(self._function, donate_argnums=self.donate_argnums)
                return self._programs[signature]

            def call(hyper, *args):
                return jax.tree.unflatten(out_tree, exported.call(hyper, *jax.tree.leaves(args)))
            self._programs[signature] = jax.jit(call, donate_argnums=self.donate_argnums)
        return self._programs[signature]

    def _exported(self, args: tuple, signature: tuple) -> tuple[Any, Any]:
        """(the jax.export.Exported of the flattened function, its output's tree): kept, else traced and kept."""
        from jax import export

        context = [jax.default_backend(), *(getattr(jax.config, flag) for flag in TRACING_FLAGS)]
        key = hashlib.sha256(repr((self.name, self.settings, signature, context)).encode()).hexdigest()[:24]
        folder = kept_folder() if self.settings is not None else None
        path = folder / f"{self.name}-{code_version()}-{key}.bin" if folder else None
        if path is not None and path.exists():
            try:
                data = path.read_bytes()
                if data.startswith(KEPT_FORMAT):
                    out_tree, serialized = pickle.loads(data[len(KEPT_FORMAT):])
                    return export.deserialize(serialized), out_tree
            except Exception:  # cut short, or deleted since by another code version's process: traced again
                pass
        in_tree, out_trees = signature[0], []

        def flat(hyper, *leaves):
            out = self._function(hyper, *jax.tree.unflatten(in_tree, leaves))
            out_leaves, out_tree = jax.tree.flatten(out)
            out_trees.append(out_tree)
            return out_leaves
        exported = export.export(jax.jit(flat))(self.hyper, *jax.tree.leaves(args))
        if path is not None:
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.bin"):  # other code versions' programs: never read again
                if old.stem.split("-")[1:2] != [code_version()]:
                    old.unlink(missing_ok=True)
            write_bytes_atomic(path, KEPT_FORMAT + pickle.dumps((out_trees[0], exported.serialize())))
        return exported, out_trees[0]
