"""drol-diag beyond the method: tasks, settings and the run folder (layer 1: `tasks`, `settings`,
`runfolder`, `datagen`, `platform`), the training driver (layer 3: `training`) and the command line
(layer 5: `cli`). Importing this package file imports nothing, so a lower layer never loads a higher
one; the layers and their rules are in docs/extending.md ("How it is built").

Loading a trained policy: `drol_diag.load_run(path)` (drol_diag.training.trained_run.load_run) is
imported from the training layer when first used, so that `import drol_diag` stays light."""


def __getattr__(name: str):
    """`load_run`, imported from the training layer on first use (PEP 562)."""
    if name == "load_run":
        from drol_diag.training.trained_run import load_run

        return load_run
    raise AttributeError(f"module 'drol_diag' has no attribute {name!r}")


__all__ = ["load_run"]
