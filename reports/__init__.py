"""rliable-based statistics and the referee-response report (`drol-diag report DIR`).

results folder -> runs (inventory, per-seed protocol scores) -> analysis (aggregates,
probabilities of improvement, profiles, curves, diagnostics, each with bootstrap intervals; stats
is the rliable layer) -> sections (paragraphs written from the numbers, tables, figures) ->
document (the report as data) -> html / pdf renderers; build writes the outputs atomically.
"""
