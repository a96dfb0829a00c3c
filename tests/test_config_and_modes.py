"""Presets chosen from the task name, overrides, profiles; the embedded `modes` task."""

import jax.numpy as jnp
import numpy as np
import pytest

from drol.config import DROLConfig
from drol_diag.settings import resolve
from drol_diag.tasks import load_task, validate_dataset
from drol_diag.tasks.modes import MODES_TASKS, ModesGeometry, modes_task


@pytest.mark.parametrize("task, expected", [
    ("cube-double-play-singletask-task3-v0", dict(bc_coef=3.0, num_candidates=64, discount=0.99, q_agg="mean")),
    ("antmaze-giant-navigate-singletask-task1-v0", dict(bc_coef=0.03, num_candidates=1, discount=0.995, q_agg="min")),
    ("humanoidmaze-large-navigate-singletask-v0", dict(bc_coef=0.3, num_candidates=4, discount=0.995)),
    ("puzzle-4x4-play-singletask-task5-v0", dict(bc_coef=10.0, num_candidates=64)),
    ("antmaze-umaze-v2", dict(bc_coef=0.3, num_candidates=2)),
    ("door-human-v1", dict(bc_coef=10.0, num_candidates=8, q_agg="min")),
    ("modes-2d", dict(bc_coef=DROLConfig.bc_coef, num_candidates=16, discount=0.99)),
])
def test_family_preset_is_chosen_from_the_task_name(task, expected):
    learner, _ = resolve(task, "paper")
    for field, value in expected.items():
        assert getattr(learner, field) == value, field


def test_explicit_overrides_beat_presets_and_profiles():
    learner, run = resolve("cube-double-play-singletask-task1-v0", "smoke", num_candidates=16, bc_coef=0.5,
                           steps=77, seeds=(3, 5))
    assert (learner.num_candidates, learner.bc_coef, run.steps, run.seeds) == (16, 0.5, 77, (3, 5))
    assert learner.actor_hidden == (64, 64)  # from the smoke profile


def test_paper_profile_has_the_published_sizes_and_schedule():
    learner, run = resolve("scene-play-singletask-task2-v0", "paper")
    assert learner.actor_hidden == learner.critic_hidden == (512, 512, 512, 512)
    assert (learner.lr, learner.batch_size, learner.tau, learner.num_critics) == (3e-4, 256, 0.005, 2)
    assert (run.steps, run.eval_interval, run.eval_episodes) == (1_000_000, 100_000, 50)
    _, d4rl = resolve("antmaze-large-play-v2", "paper")
    assert d4rl.steps == 500_000


@pytest.mark.parametrize("name", sorted(MODES_TASKS))
def test_modes_oracle_scores_one_and_dataset_average_scores_low(name):
    task = load_task(name)
    geometry = ModesGeometry(MODES_TASKS[name])
    as_policy = lambda f: (lambda obs: np.asarray(f(jnp.asarray(obs))))
    oracle = task.evaluate(as_policy(geometry.best_action), 1, 0)["score"]
    average = task.evaluate(as_policy(geometry.mean_action), 1, 0)["score"]
    assert oracle == pytest.approx(1.0, abs=1e-6)
    assert average < 0.1
    # Every supported mode is worth less than the best one except the best itself.
    worst = task.evaluate(as_policy(lambda o: geometry.centres(o)[:, int(jnp.argmin(geometry.heights))]), 1, 0)["score"]
    assert worst == pytest.approx(float(geometry.heights.min() / geometry.heights.max()), rel=1e-3)


@pytest.mark.parametrize("name", sorted(MODES_TASKS))
def test_modes_data_is_deterministic_multimodal_and_valid(name):
    spec = MODES_TASKS[name]
    first, second = modes_task(name), modes_task(name)
    for key in first.dataset:
        np.testing.assert_array_equal(first.dataset[key], second.dataset[key])
    validate_dataset(first.dataset)
    data = first.dataset
    assert data["actions"].shape == (spec.num_transitions, spec.action_dim)
    assert np.all(data["masks"] == 0)  # horizon 1
    geometry = ModesGeometry(spec)
    dist = np.linalg.norm(data["actions"][:, None] - np.asarray(geometry.centres(jnp.asarray(data["observations"]))), axis=-1)
    nearest = dist.argmin(1)
    np.testing.assert_array_equal(nearest, data["modes"])  # each action sits at its own mode
    assert np.all(np.bincount(nearest, minlength=spec.num_modes) > 0.2 * spec.num_transitions / spec.num_modes)
    # The best mode is usually not the one nearest a dataset action.
    assert np.mean(nearest == int(jnp.argmax(geometry.heights))) < 1.5 / spec.num_modes
    # Another seed gives other data.
    other = modes_task(name, spec.__class__(**{**spec.__dict__, "seed": 1}))
    assert not np.allclose(other.dataset["observations"], data["observations"])
