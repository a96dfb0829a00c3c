"""DROL, the method layer: pure JAX functions of arrays and parameters (no files, environment
variables, processes or printing).

Modules: config (the learners' frozen configs), networks, prior, routing, losses, learner (init /
update / scanned chunks / act), fql (the baseline, same interface), variants (ablation names ->
the config fields they fix) and methods (the learner of a config).
"""
