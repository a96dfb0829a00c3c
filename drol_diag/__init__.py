"""drol-diag, the application layer: command line, training driver and the run folder on disk."""
