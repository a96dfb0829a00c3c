"""Ablation sweeps: routing variants, K and the FQL baseline, locally, on Ray or on SLURM."""
