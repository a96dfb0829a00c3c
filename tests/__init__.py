"""drol-diag's tests: a package, so that the modules import their shared helpers as tests.helpers."""
