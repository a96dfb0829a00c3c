"""The `drol-diag` command line (the top layer: the only one that imports ablations and reports)."""

from drol_diag.platform import start_process

start_process()  # before cli.app's imports reach JAX: it reads the compilation cache and CPU flags at import

from cli.app import app, main  # noqa: E402

__all__ = ["app", "main"]
