"""rliable-based statistics and the referee-response report (`drol-diag report DIR`): runs -> analysis (stats:
the rliable layer) -> sections -> document -> html / pdf; build writes the outputs atomically."""
