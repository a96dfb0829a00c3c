"""Layer 1, tasks and the run folder: `tasks` (the task registry and its families), `settings` (every
run setting, declared once), `runfolder` (the run folder's format), `datagen` (offline OGBench data)
and `platform` (process start-up). The layers and their rules: docs/extending.md ("How it is built")."""
