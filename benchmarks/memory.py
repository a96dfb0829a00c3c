"""The memory estimate (training.memory) against XLA's own buffer assignment.

    python benchmarks/memory.py [--seeds S] [--quick] [--json PATH]

For each configuration, compiles (never runs: nothing is allocated) a training chunk and a row of
probe diagnostics on the modes-2d shapes (2-D observations and actions, 20000 transitions, 1024
probes) and compares `compile().memory_analysis()` (arguments plus temporaries; outputs alias the
donated state) with the estimate's states + training, and states + diagnostics. Prints one line per
configuration and a JSON summary. The figures in training.memory's docstring come from
this script on the 2-core CPU machine (one and three seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from drol_diag.platform import start_process  # noqa: E402

start_process()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from diagnostics.probes import draw_probe_set, fql_probe_diagnostics, probe_diagnostics  # noqa: E402
from drol.config import DROLConfig, FQLConfig  # noqa: E402
from drol.learner import make_init, make_train_chunk  # noqa: E402
from drol.methods import make_learner  # noqa: E402
from training.memory import estimate_memory  # noqa: E402

OBS_DIM, ACTION_DIM, TRANSITIONS, PROBES = 2, 2, 20_000, 1024
MIB = 1 << 20


def widths(width: int, layers: int) -> dict[str, tuple[int, ...]]:
    return dict(actor_hidden=(width,) * layers, critic_hidden=(width,) * layers)


CONFIGS = {
    "dynamic K1 4x512": DROLConfig(num_candidates=1),
    "dynamic K16 4x512": DROLConfig(num_candidates=16),
    "dynamic K64 4x512": DROLConfig(num_candidates=64),
    "dynamic K256 4x512": DROLConfig(num_candidates=256),
    "dynamic K64 4x512 batch 1024": DROLConfig(num_candidates=64, batch_size=1024),
    "dynamic K64 2x256": DROLConfig(num_candidates=64, **widths(256, 2)),
    "dynamic K64 2x1024": DROLConfig(num_candidates=64, **widths(1024, 2)),
    "static K64 4x512": DROLConfig(num_candidates=64, latents="bank", refresh_interval=0),
    "dynamic-bank K64 4x512": DROLConfig(num_candidates=64, latents="bank"),
    "refresh-100 K64 4x512": DROLConfig(num_candidates=64, latents="bank", refresh_interval=100),
    "random K64 4x512": DROLConfig(num_candidates=64, routing="random"),
    "soft K16 4x512": DROLConfig(num_candidates=16, routing="soft"),
    "soft K64 4x512": DROLConfig(num_candidates=64, routing="soft"),
    "soft K64 4x512 3 critics": DROLConfig(num_candidates=64, routing="soft", num_critics=3),
    "all-candidates K64 2x256": DROLConfig(num_candidates=64, routing="uniform", **widths(256, 2)),
    "fql 4x512": FQLConfig(),
    "fql 4x512 batch 1024": FQLConfig(batch_size=1024),
    "dynamic K2000 3x128": DROLConfig(num_candidates=2000, **widths(128, 3)),
}
QUICK = ("dynamic K64 4x512", "soft K16 4x512", "fql 4x512")


def measured(config, seeds: int) -> tuple[int, int]:
    """XLA's bytes (arguments + temporaries) of a training chunk and of a probe row, for `seeds` seeds."""
    learner = make_learner(config, OBS_DIM, ACTION_DIM, TRANSITIONS)
    seed_numbers = jnp.arange(seeds, dtype=jnp.int32)
    states = jax.eval_shape(make_init(learner), seed_numbers)
    data = {name: jax.ShapeDtypeStruct((TRANSITIONS, OBS_DIM) if "observations" in name else
                                       (TRANSITIONS, ACTION_DIM) if name == "actions" else (TRANSITIONS,), jnp.float32)
            for name in ("observations", "actions", "rewards", "masks", "next_observations")}
    chunk = make_train_chunk(learner).lower(states, data, jnp.int32(10)).compile().memory_analysis()
    probes = jax.eval_shape(jax.vmap(lambda s, d: draw_probe_set(d, s, PROBES, config.num_candidates),
                                     in_axes=(0, None)), seed_numbers, data)
    keys = jax.eval_shape(jax.vmap(jax.random.PRNGKey), seed_numbers)
    diagnose = probe_diagnostics if config.method == "drol" else fql_probe_diagnostics
    row = jax.jit(jax.vmap(lambda s, p, k: diagnose(learner, s, p, k))).lower(states, probes, keys).compile()
    row = row.memory_analysis()
    dataset_bytes = 4 * TRANSITIONS * (2 * OBS_DIM + ACTION_DIM + 2)
    return (chunk.argument_size_in_bytes - dataset_bytes + chunk.temp_size_in_bytes,
            row.argument_size_in_bytes + row.temp_size_in_bytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = []
    for name, config in CONFIGS.items():
        if args.quick and name not in QUICK:
            continue
        started = time.perf_counter()
        chunk, row = measured(config, args.seeds)
        estimate = estimate_memory(config, OBS_DIM, ACTION_DIM, TRANSITIONS, args.seeds, PROBES)
        chunk_estimate, row_estimate = estimate.states + estimate.training, estimate.states + estimate.diagnostics
        results.append(dict(config=name, seeds=args.seeds, chunk_mib=chunk / MIB,
                            chunk_estimate_mib=chunk_estimate / MIB, row_mib=row / MIB,
                            row_estimate_mib=row_estimate / MIB))
        print(f"{name:30s} training chunk: estimate {chunk_estimate / MIB:8.0f} MiB, XLA {chunk / MIB:8.0f} MiB "
              f"({chunk_estimate / chunk - 1:+4.0%});  probe row: estimate {row_estimate / MIB:8.0f} MiB, XLA "
              f"{row / MIB:8.0f} MiB ({row_estimate / row - 1:+4.0%})  [{time.perf_counter() - started:.0f} s]",
              flush=True)
    print(json.dumps(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
