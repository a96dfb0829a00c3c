"""A process's platform settings: the XLA:CPU flag only where JAX will run on its CPU backend (decided
before JAX starts), and --matmul-precision (recorded in config.json, applied to the run's programs,
held to on resume, checked)."""

from __future__ import annotations

import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ablations import grid
from drol.learner import make_init, make_train_chunk
from drol.methods import make_learner
from drol_diag.platform import YNN_FUSION_FLAG, cpu_backend_expected, cpu_backend_here, prefer_fast_cpu_dots
from drol_diag.runfolder import store
from drol_diag.settings import resolve
from tests.helpers import invoke, random_dataset
from tests.test_bad_input import TINY_RUN, assert_refused, files_under
from training.driver import matmul_precision

CUDA = ("xla_cuda12",)


@pytest.mark.parametrize("environ, plugins, nvidia_present, cpu", [
    ({}, (), False, True),  # the CPU-only jaxlib
    ({}, (), True, True),  # a GPU machine without jax's CUDA plugin: JAX runs on the CPU
    ({}, CUDA, True, False),  # pip install '.[cuda12]' on a GPU machine
    ({}, CUDA, False, True),  # ... on a login node without GPUs: the plugin finds none, JAX falls back to the CPU
    ({"CUDA_VISIBLE_DEVICES": "0"}, CUDA, True, False),
    ({"CUDA_VISIBLE_DEVICES": ""}, CUDA, True, True),  # every GPU hidden
    ({"CUDA_VISIBLE_DEVICES": "-1"}, CUDA, True, True),
    ({"JAX_PLATFORMS": "cpu"}, CUDA, True, True),  # JAX_PLATFORMS decides when set
    ({"JAX_PLATFORMS": "cuda,cpu"}, (), False, False),
    ({"JAX_PLATFORMS": " CPU "}, (), True, True),
    ({}, ("xla_tpu",), False, False),  # an accelerator other than CUDA: JAX prefers it
])
def test_the_backend_is_decided_before_jax_starts(environ, plugins, nvidia_present, cpu):
    assert cpu_backend_expected(environ, plugins, nvidia_present) is cpu


def test_the_decision_matches_the_backend_jax_started_here():
    assert cpu_backend_here() == (jax.default_backend() == "cpu")


@pytest.mark.parametrize("platforms, flag_set", [("cpu", True), ("cuda", False)])
def test_the_cpu_flag_is_set_only_for_the_cpu_backend(monkeypatch, platforms, flag_set):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/unused")  # (restored after the test)
    monkeypatch.setenv("JAX_PLATFORMS", platforms)
    prefer_fast_cpu_dots()
    assert (YNN_FUSION_FLAG in os.environ["XLA_FLAGS"]) is flag_set
    assert os.environ["XLA_FLAGS"].startswith("--xla_dump_to=/tmp/unused")  # the user's flags kept


def test_matmul_precision_reaches_every_dot_of_the_update():
    learner_config, run = resolve("modes-2d", "smoke", actor_hidden=(8,), critic_hidden=(8,), num_candidates=2,
                                  seeds=(0,), batch_size=4, matmul_precision="highest")
    dataset = random_dataset(64)
    learner = make_learner(learner_config, 3, 2, 64)
    states = make_init(learner)(jnp.asarray(run.seeds, jnp.int32))
    with matmul_precision(run):
        text = make_train_chunk(learner).lower(states, dataset, 1).as_text()
    # Every dot of the networks, routing and losses (none pins its own; JAX's default leaves them DEFAULT).
    assert set(re.findall(r"precision = \[(\w+), \w+\]", text)) == {"HIGHEST"}


SEEN_PRECISIONS: list = []  # what the evaluations of precision_probe_task saw


def precision_probe_task() -> dict:
    """A package.module:factory task whose evaluation records the matmul precision it runs under."""
    def evaluate(policy, num_episodes: int, seed: int) -> dict:
        SEEN_PRECISIONS.append(jax.config.jax_default_matmul_precision)
        return {"score": 0.0}
    return {"dataset": {name: np.asarray(value) for name, value in random_dataset(64).items()}, "evaluate": evaluate}


def test_matmul_precision_is_recorded_held_on_resume_and_checked(tmp_path):
    out = tmp_path / "out"
    SEEN_PRECISIONS.clear()
    task = ("--task", f"{__name__}:precision_probe_task", "--batch-size", "16", "--probes", "16")
    result = invoke("run", *TINY_RUN, *task, "--matmul-precision", "highest", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert SEEN_PRECISIONS == ["highest"]  # the run's programs are traced at its precision (here its evaluation)
    (config_path,) = out.rglob(store.CONFIG_FILE)
    assert json.loads(config_path.read_text())["run"]["matmul_precision"] == "highest"
    before = files_under(out)
    line = assert_refused(invoke("run", *TINY_RUN, *task, "--resume", "--out", str(out)),
                          "cannot resume")  # (the default is "default")
    assert 'run.matmul_precision: "highest" (run folder) vs "default" (this command)' in line
    assert_refused(invoke("run", *TINY_RUN, "--matmul-precision", "fast", "--out", str(tmp_path / "other")),
                   "--matmul-precision must be one of default, high, highest, got 'fast'")
    assert files_under(out) == before and not (tmp_path / "other").exists()
    # The same precision: the finished run is found as it was (nothing to train, nothing rewritten).
    resumed = invoke("run", *TINY_RUN, *task, "--resume", "--matmul-precision", "highest", "--out", str(out))
    assert resumed.exit_code == 0, resumed.output
    assert files_under(out) == before


def test_a_sweep_passes_matmul_precision_to_every_group(tmp_path):
    spec = grid.spec_from_values({"matmul-precision": "highest"}, {"tasks": "modes-2d", "ablations": "dynamic,fql"})
    for group in grid.expand(spec):
        arguments = grid.run_arguments(spec, group, tmp_path)
        assert arguments[arguments.index("--matmul-precision") + 1] == "highest"
        assert grid.resolve_group(spec, group)[1].matmul_precision == "highest"
