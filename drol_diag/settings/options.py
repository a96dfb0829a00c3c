"""Every run option, declared once."""

DEFAULT_PROBES = 1024  # M: probe transitions per seed for the diagnostics
