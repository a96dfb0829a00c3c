"""The `drol-diag` command line (the top layer: the only one that imports ablations and reports)."""

from cli.app import app, main

__all__ = ["app", "main"]
