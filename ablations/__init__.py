"""Ablation runner: routing variants (static, dynamic-bank, refresh-N, random, soft, ...),
K sweeps and the FQL baseline, locally or on a Ray cluster. Filled in by the ablation issue."""
