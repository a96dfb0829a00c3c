"""benchmarks/gpu.py --quick: the GPU benchmark's whole path (training rows, device memory, diagnostics,
an evaluation of cube-single episodes, the projection) on tiny sizes, on whatever backend the suite runs;
benchmarks/overhead.py --quick: two tiny `drol-diag run`s broken down by phase (summary.json's `phases`)."""

from __future__ import annotations

import json

import jax
import pytest


def test_gpu_benchmark_quick_measures_every_part(tmp_path, capsys):
    from benchmarks import gpu  # (imported here: OGBench and MuJoCo, not at every worker's collection)

    figures = gpu.main(["--quick", "--matmul-precision", "highest", "--json", str(tmp_path / "gpu.json")])
    assert json.loads((tmp_path / "gpu.json").read_text()) == json.loads(json.dumps(figures))
    assert figures["backend"] == jax.default_backend() and figures["matmul_precision"] == "highest"
    assert jax.config.jax_default_matmul_precision is None  # (set only while measuring)
    rows = figures["rows"]
    assert [row["seeds"] for row in rows] == list(gpu.sizes(quick=True)["seeds"])
    for row in rows:
        assert row["seed_updates_per_s"] == pytest.approx(row["updates_per_s"] * row["seeds"])
        assert row["peak_fraction"] == pytest.approx(row["gflops"] / figures["matmul_peak_gflops"])
        assert row["compile_s"] > 0 and row["peak_bytes"] > 0 and row["program_bytes"] > 0
    if figures["backend"] == "cpu":
        assert "process peak RSS" in figures["memory"]
    evaluation = figures["evaluation"]
    assert evaluation["episodes"] == 1 and 1 <= evaluation["env_steps"] <= 20 and evaluation["eval_s"] > 0
    projected = figures["projection"]
    (eight,) = [row for row in rows if row["seeds"] == gpu.PROJECTED_SEEDS]
    assert projected["training_s"] == pytest.approx(projected["steps"] * gpu.PROJECTED_SEEDS / eight["seed_updates_per_s"])
    assert projected["wall_s"] == pytest.approx(projected["training_s"] + projected["diagnostics_s"]
                                                + projected["evaluation_s"] + projected["one_off_s"])
    assert projected["evaluation_s"] == pytest.approx(projected["steps"] // projected["eval_interval"] * gpu.PROJECTED_SEEDS
                                                      * evaluation["eval_s"] * projected["eval_episodes"])
    printed = capsys.readouterr().out
    assert "seed-upd/s" in printed and "projected: 8 seeds x 1000000 updates" in printed
    assert printed.count("\n") >= 6 + len(rows)


def test_overhead_benchmark_quick_breaks_every_run_down_by_phase(tmp_path, capsys):
    from benchmarks import overhead
    from training.observer import PHASES

    figures = overhead.main(["--quick", "--json", str(tmp_path / "overhead.json")])
    assert json.loads((tmp_path / "overhead.json").read_text()) == json.loads(json.dumps(figures))
    assert list(figures["configurations"]) == ["demo", "settle group"]
    for row in figures["configurations"].values():
        phases, wall = row["phases"], row["process_wall_s"]
        assert set(phases) == set(PHASES) and all(seconds >= 0 for seconds in phases.values()), phases
        assert phases["startup"] > 0 and phases["training"] > 0 and sum(phases.values()) <= wall + 0.05
        assert row["training_share"] == pytest.approx(phases["training"] / wall)
        assert row["diagnostics_over_training"] == pytest.approx(phases["diagnostics"] / phases["training"])
    printed = capsys.readouterr().out
    assert printed.count("training share of the process wall time") == 2 and "compile_diagnostics" in printed
