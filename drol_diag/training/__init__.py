"""The training driver (layer 3, above the diagnostics it records): drol_diag.training.driver."""
