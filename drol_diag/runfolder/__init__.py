"""The run folder format (layer 1): `store` (config.json, the growing xarray/zarr log, checkpoints,
atomic writes and the folder lock), `record` (what config.json records, the folder's path), `folders`
(reading: list run folders, open or skip each with the reason, a sweep's view of one, its lock's holder) and
`scoring` (the published protocol that turns evaluations into a score)."""
