"""Paper scale on whatever backend JAX finds (a GPU where there is one): what a GPU run of the paper's grid costs.

    python benchmarks/gpu.py [--quick] [--seeds 1,8,32] [--matmul-precision default|high|highest] [--json PATH]

At the paper configuration (4x512 actor and critics, batch 256, K 16; synthetic arrays of the
cube-single shapes, obs 28 and action 5, 1M transitions: no dataset needed) with 1, 8 and 32 seeds
vmapped, through benchmarks/throughput.py's measure: updates/s and seed-updates/s, GFLOP/s as a
fraction of a float32 matmul peak measured in the same process (at the same matmul precision, after
the seed rows: on a device they warmed), compile time, XLA's memory for the compiled training chunk
(its buffer assignment) and the peak memory
of the device (jax's Device.memory_stats(): the high-water mark since the start, the configurations
measured smallest first; the CPU backend reports none, so there the process's peak resident memory
stands in, labelled so). Beside it: one row of probe diagnostics at 8 seeds (throughput's
measure_diagnostics), and one seed's evaluation of 50 cube-single episodes (benchmarks/evaluation.py's
environments and timing: OGBench's own environment, no dataset). From these, the projected wall time
of 8 seeds x 1M updates with the paper's schedule for cube-single (drol_diag.settings.resolve, profile
paper: a diagnostics row every 5k updates, 50 episodes per seed every 100k; seeds are evaluated one
after another), compilation included.

--quick: tiny sizes (2x16 widths, batch 16, K 2, 8 seeds, 2,000 transitions, 64 probes, one episode of
20 steps in this process): the whole path in seconds on a CPU, for the test suite
(tests/test_benchmarks.py); its figures say nothing about the paper configuration.

Targets (issue 15) on one H100/H200-class GPU: 8 seeds x 1M updates in at most 30 minutes (>= 4,600
seed-updates/s at 8 seeds; the paper reports 4.9 ms per update for one seed, about 200 updates/s), the
diagnostics within 5% of the training time.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from drol_diag.platform import start_process  # noqa: E402

start_process()  # the XLA:CPU flag (CPU backend only) and MUJOCO_GL before JAX and MuJoCo start
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.evaluation import EVAL_STEP, TASK, TimedEvaluation, compile_policy, env_factory  # noqa: E402
from benchmarks.throughput import ACTION_DIM, OBS_DIM, matmul_peak_gflops, measure, measure_diagnostics  # noqa: E402
from drol.config import DROLConfig  # noqa: E402
from drol.learner import Learner, make_act, make_init  # noqa: E402
from drol_diag.runfolder import store  # noqa: E402
from drol_diag.settings import resolve  # noqa: E402
from drol_diag.settings.resolve import MATMUL_PRECISIONS  # noqa: E402
from drol_diag.tasks import Task  # noqa: E402
from drol_diag.tasks.episodes import EpisodeEvaluator, default_workers  # noqa: E402
from training.evaluation import evaluate_seeds  # noqa: E402

PROJECTED_SEEDS = 8  # the projection: 8 seeds x the paper schedule's updates
TARGETS = {"projected_wall_s": 30 * 60.0, "seed_updates_per_s": 4600.0, "diagnostics_overhead": 0.05}
MIB = 1 << 20


def sizes(quick: bool) -> dict:
    """What is measured: the paper configuration, or --quick's tiny one."""
    if quick:
        return dict(hidden=(16, 16), fields=dict(batch_size=16, num_candidates=2), seeds=(PROJECTED_SEEDS,),
                    transitions=2_000, probes=64, episodes=1, max_episode_steps=20, workers=0)
    return dict(hidden=(512,) * 4, fields=dict(batch_size=256, num_candidates=16), seeds=(1, PROJECTED_SEEDS, 32),
                transitions=1_000_000, probes=1024, episodes=50, max_episode_steps=None, workers=default_workers())


def chunk_and_repeats(backend: str, seeds: int, quick: bool) -> tuple[int, int]:
    """Updates per compiled chunk and timed repeats: chunks long enough that the call overhead vanishes on
    an accelerator, short enough that 32 seeds of the paper configuration take seconds on a CPU."""
    if quick:
        return 4, 1
    return (1000, 3) if backend != "cpu" else (max(2, 64 // seeds), 2)


def peak_memory() -> tuple[int, str]:
    """(bytes, what they are): the first device's peak memory in use where its backend reports it, else
    this process's peak resident memory."""
    stats = jax.local_devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device peak (memory_stats)"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak RSS (no device figure on CPU)"


def measure_evaluation(hidden: tuple[int, ...], fields: dict, episodes: int, workers: int,
                       max_episode_steps: int | None) -> dict:
    """One seed's evaluation of `episodes` cube-single episodes by a freshly initialised actor of these sizes,
    through the trainer's code path (evaluate_seeds, the jitted learner.act), timed as benchmarks/evaluation.py
    times it (compilation and environment creation apart)."""
    learner = Learner(DROLConfig(actor_hidden=hidden, critic_hidden=hidden, **fields), OBS_DIM, ACTION_DIM)
    states = make_init(learner)(jnp.asarray([0]))
    act_fn = make_act(learner)
    compile_s = compile_policy(learner, states, act_fn, episodes)
    timed = TimedEvaluation(EpisodeEvaluator(env_factory(max_episode_steps), workers=workers))
    start = time.perf_counter()
    timed.evaluator.prepare(timed.evaluator.envs_for(episodes))
    create_s = time.perf_counter() - start
    with timed.evaluator:
        evaluate_seeds(Task(TASK, {}, evaluate=timed), learner, states, [0], EVAL_STEP, episodes, act_fn)
    return {"episodes": episodes, "workers": workers, "env_steps": int(timed.results.lengths.sum()),
            "eval_s": timed.seconds, "policy_s": timed.policy_seconds, "compile_s": compile_s,
            "create_envs_s": create_s}


def projection(row: dict, diagnostics: dict, evaluation: dict) -> dict:
    """Wall seconds of PROJECTED_SEEDS seeds over the paper schedule of cube-single, from a measured row
    (its updates/s; a row of another seed count is scaled at equal seed-updates/s), a diagnostics row and
    one seed's evaluation."""
    _, run = resolve(TASK, "paper")
    updates_per_s = row["seed_updates_per_s"] / PROJECTED_SEEDS
    training = run.steps / updates_per_s
    diagnostics_s = run.steps / run.log_interval * diagnostics["row_s"]
    evaluations = run.steps // run.eval_interval
    evaluation_s = evaluations * PROJECTED_SEEDS * evaluation["eval_s"] * run.eval_episodes / evaluation["episodes"]
    compile_s = row["compile_s"] + diagnostics["setup_s"] + evaluation["compile_s"] + evaluation["create_envs_s"]
    return {"seeds": PROJECTED_SEEDS, "from_seeds": row["seeds"], "steps": run.steps, "log_interval": run.log_interval,
            "eval_interval": run.eval_interval, "eval_episodes": run.eval_episodes, "training_s": training,
            "diagnostics_s": diagnostics_s, "evaluation_s": evaluation_s, "one_off_s": compile_s,
            "wall_s": training + diagnostics_s + evaluation_s + compile_s,
            "diagnostics_overhead": diagnostics_s / training}


def duration(seconds: float) -> str:
    """Seconds as minutes, or hours from one hour on."""
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def table(rows: list[dict], peak: float, memory_label: str) -> str:
    """The measured rows, one line each."""
    lines = [f"{'seeds':>5} {'updates/s':>10} {'seed-upd/s':>11} {'GFLOP/s':>9} {'of peak':>7} {'compile s':>9} "
             f"{'XLA MiB':>8} {'peak MiB':>9}  ({memory_label})"]
    for row in rows:
        program = "n/a" if row["program_bytes"] is None else f"{row['program_bytes'] / MIB:.0f}"
        lines.append(f"{row['seeds']:>5} {row['updates_per_s']:>10.2f} {row['seed_updates_per_s']:>11.1f} "
                     f"{row['gflops']:>9.1f} {row['gflops'] / peak:>7.1%} {row['compile_s']:>9.1f} {program:>8} "
                     f"{row['peak_bytes'] / MIB:>9.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: the whole path in seconds on a CPU")
    parser.add_argument("--seeds", help="seed counts to measure, e.g. 1,8,32 (default: 1,8,32; --quick: 8)")
    parser.add_argument("--matmul-precision", choices=MATMUL_PRECISIONS, default="default",
                        help="jax_default_matmul_precision for everything measured (default: default)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    size = sizes(args.quick)
    try:
        seed_counts = size["seeds"] if args.seeds is None else tuple(sorted({int(s) for s in args.seeds.split(",")}))
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: comma-separated seed counts like 1,8,32")
    if min(seed_counts) < 1:
        parser.error(f"--seeds {args.seeds!r}: seed counts are positive")
    with jax.default_matmul_precision(args.matmul_precision):  # (this process's setting only while measuring)
        figures = measure_all(args, seed_counts)
    if args.json:
        store.write_json_atomic(Path(args.json), figures)
    return figures


def measure_all(args: argparse.Namespace, seed_counts: tuple[int, ...]) -> dict:
    """Every measurement, printed as it comes; the figures."""
    size = sizes(args.quick)
    backend, device = jax.default_backend(), jax.local_devices()[0]
    peak_sizes = dict(repeats=2, sizes=(256,), rows=512) if args.quick else {}
    if backend != "cpu" and not args.quick:  # an accelerator needs larger products to reach its peak
        peak_sizes = dict(repeats=10, sizes=(4096, 8192), rows=8192)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; jax {jax.__version__} "
          f"on {backend} ({device.device_kind}); matmul precision {args.matmul_precision}; "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}" + ("; QUICK: tiny sizes" if args.quick else ""))
    print(f"training: {'x'.join(map(str, size['hidden']))}, batch {size['fields']['batch_size']}, K "
          f"{size['fields']['num_candidates']}, obs {OBS_DIM}, action {ACTION_DIM}, {size['transitions']} synthetic "
          "transitions")

    rows, memory_label = [], ""
    for seeds in seed_counts:
        chunk, repeats = chunk_and_repeats(backend, seeds, args.quick)
        row = measure(size["hidden"], seeds, chunk, repeats, transitions=size["transitions"], **size["fields"])
        row["peak_bytes"], memory_label = peak_memory()
        rows.append(row)
    peak = matmul_peak_gflops(**peak_sizes)  # after the rows: the device warm, its clocks where training left them
    print(f"float32 matmul peak (measured here, after the training rows): {peak:.1f} GFLOP/s")
    for row in rows:
        row["peak_fraction"] = row["gflops"] / peak
    print(table(rows, peak, memory_label))

    basis = min(rows, key=lambda row: abs(row["seeds"] - PROJECTED_SEEDS))
    diagnostics = measure_diagnostics(size["hidden"], PROJECTED_SEEDS, size["transitions"],
                                      resolve(TASK, "paper")[1].log_interval, basis["seed_updates_per_s"]
                                      / PROJECTED_SEEDS, num_probes=size["probes"], **size["fields"])
    print(f"diagnostics ({PROJECTED_SEEDS} seeds, {size['probes']} probes per seed): {diagnostics['row_s']:.3f} s per "
          f"row (setup {diagnostics['setup_s']:.1f} s once); every {diagnostics['log_interval']} updates that is "
          f"{diagnostics['overhead']:.1%} of the training time (target <= {TARGETS['diagnostics_overhead']:.0%})")
    evaluation = measure_evaluation(size["hidden"], size["fields"], size["episodes"], size["workers"],
                                    size["max_episode_steps"])
    print(f"evaluation: {evaluation['episodes']} cube-single episodes of one seed ({evaluation['env_steps']} steps, "
          f"{evaluation['workers']} workers): {evaluation['eval_s']:.2f} s, the policy {evaluation['policy_s']:.2f} s "
          f"of it (compile {evaluation['compile_s']:.1f} s, creating the environments {evaluation['create_envs_s']:.1f}"
          " s, once)")
    projected = projection(basis, diagnostics, evaluation)
    scaled = "" if basis["seeds"] == PROJECTED_SEEDS else f" (scaled from {basis['seeds']} seeds)"
    print(f"projected: {PROJECTED_SEEDS} seeds x {projected['steps']} updates{scaled} = "
          f"{duration(projected['wall_s'])}: training {duration(projected['training_s'])}, diagnostics "
          f"{duration(projected['diagnostics_s'])}, evaluation {duration(projected['evaluation_s'])} "
          f"({projected['steps'] // projected['eval_interval']} x {PROJECTED_SEEDS} seeds x "
          f"{projected['eval_episodes']} episodes), one-off {projected['one_off_s']:.0f} s (target <= "
          f"{duration(TARGETS['projected_wall_s'])}; {basis['seed_updates_per_s']:.0f} seed-updates/s against >= "
          f"{TARGETS['seed_updates_per_s']:.0f})")
    return {"backend": backend, "device": device.device_kind, "jax": jax.__version__, "quick": args.quick,
               "matmul_precision": args.matmul_precision, "matmul_peak_gflops": peak, "memory": memory_label,
               "rows": rows, "diagnostics": diagnostics, "evaluation": evaluation, "projection": projected,
               "targets": TARGETS}


if __name__ == "__main__":
    main()
