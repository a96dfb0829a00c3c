"""Instrumented routing hooks and xarray stability logs (ownership flips, winner-to-data
distances, critic/BC gradient conflicts, candidate usage). Filled in by the diagnostics issue."""
