"""drol-diag beyond the method: tasks, settings and the run folder (layer 1: `tasks`, `settings`,
`runfolder`, `datagen`, `platform`), the training driver (layer 3: `training`) and the command line
(layer 5: `cli`). This package file imports nothing, so a lower layer never loads a higher one; the
layers and their rules are in the README ("How it is built")."""
