"""Traced programs kept across processes: a jitted function is traced and lowered once per code version, settings
and argument shapes (jax.export), its StableHLO kept beside JAX's compilation cache, and a later process reads it
back instead of tracing again (tracing and lowering are most of a warm-cache start: docs/extending.md). Every call
goes through the exported program, kept or not, so a run computes the same numbers either way.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

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


class KeptProgram:
    """jax.jit(make_function(), donate_argnums) whose tracing is kept across processes under `settings` (a value
    whose repr determines everything the function closes over, e.g. a frozen learner dataclass; None: not kept);
    make_function is called only to trace. Call it, or .lower it, as the jitted function."""

    def __init__(self, name: str, settings: Any, make_function: Callable[[], Callable],
                 donate_argnums: Sequence[int] = ()):
        self.name, self.settings, self.make_function = name, None if settings is None else repr(settings), make_function
        self.donate_argnums = tuple(donate_argnums)
        self._programs: dict[tuple, Any] = {}  # by argument structure and shapes: the jitted call of the export

    def __call__(self, *args):
        return self._program(args)(*args)

    def lower(self, *args):
        return self._program(args).lower(*args)

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
                self._programs[signature] = jax.jit(self.make_function(), donate_argnums=self.donate_argnums)
                return self._programs[signature]

            def call(*args):
                return jax.tree.unflatten(out_tree, exported.call(*jax.tree.leaves(args)))
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
        in_tree, out_trees, function = signature[0], [], self.make_function()

        def flat(*leaves):
            out = function(*jax.tree.unflatten(in_tree, leaves))
            out_leaves, out_tree = jax.tree.flatten(out)
            out_trees.append(out_tree)
            return out_leaves
        exported = export.export(jax.jit(flat))(*jax.tree.leaves(args))
        if path is not None:
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.bin"):  # other code versions' programs: never read again
                if old.stem.split("-")[1:2] != [code_version()]:
                    old.unlink(missing_ok=True)
            write_bytes_atomic(path, KEPT_FORMAT + pickle.dumps((out_trees[0], exported.serialize())))
        return exported, out_trees[0]
