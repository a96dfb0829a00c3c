"""Yardsticks and chance levels (issue 14): return_rate beside its chance level, distances beside the data's own
scale, coverage of the data actions and of the task's modes; the report reads the excess over chance, the ratios
and a collapse onto fewer modes. Known answers on small constructed arrays, then the session's small sweep."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diagnostics.probes import ProbeSet, coverage_diagnostics
from diagnostics.stability import OwnershipTracker
from diagnostics.support import SupportIndex, data_action_spread
from drol.config import DROLConfig
from drol.learner import Learner, bank_key, init_state
from drol.losses import candidate_actions
from drol.prior import latent_bank
from reports.analysis import analyse
from reports.questions.ownership import ownership_answer
from reports.questions.support import support_answer, support_reference
from reports.runs import read_results
from tests.test_report_text import REPS, TASK, synthetic_summary, with_diagnostics

# ------------------------------------------------------------------------------------------------
# The chance level of returns


def test_return_rate_chance_counts_each_probes_former_owners():
    tracker = OwnershipTracker(num_seeds=1, num_probes=2, num_candidates=4)
    rows = [tracker.update(np.asarray([w]), np.asarray([w])) for w in ([0, 0], [1, 0], [0, 2], [2, 2])]
    assert np.isnan(rows[0]["return_rate_chance"][0])  # no previous interval
    # Probe 0 leaves 0, its only owner so far: no former owner to go back to by chance.
    assert rows[1]["return_rate_chance"][0] == 0.0 and rows[1]["return_rate"][0] == 0.0
    # Probe 0 leaves 1 having owned {0, 1}: 1 of the 3 other candidates is a former owner; probe 1 leaves 0 (its
    # only owner): 0. Over both probes: (1/3 + 0) / 2. Probe 0 went back to 0, a return.
    assert rows[2]["return_rate_chance"][0] == pytest.approx(1 / 6) and rows[2]["return_rate"][0] == 0.5
    # Probe 0 leaves 0 having owned {0, 1}: 1/3; probe 1 does not flip and counts 0.
    assert rows[3]["return_rate_chance"][0] == pytest.approx(1 / 6) and rows[3]["return_rate"][0] == 0.0

    one = OwnershipTracker(num_seeds=1, num_probes=3, num_candidates=1)  # K=1: nothing can flip, chance 0
    one.update(np.zeros((1, 3), int), np.zeros((1, 3), int))
    assert one.update(np.zeros((1, 3), int), np.zeros((1, 3), int))["return_rate_chance"][0] == 0.0


def test_return_rate_chance_nears_the_flip_rate_once_every_candidate_has_owned_a_probe():
    rng = np.random.default_rng(0)
    tracker = OwnershipTracker(num_seeds=1, num_probes=500, num_candidates=4)
    for _ in range(30):  # uniform random owners: after a few intervals almost any flip is a return by chance
        row = tracker.update(rng.integers(0, 4, (1, 500)), np.zeros((1, 500), int))
    assert row["return_rate_chance"][0] == pytest.approx(row["flip_rate"][0], abs=0.01)
    assert abs(row["return_rate"][0] - row["return_rate_chance"][0]) < 0.03  # random flips: returns at chance


# ------------------------------------------------------------------------------------------------
# The data's own action scale, and coverage


def test_data_action_spread_is_the_action_gap_to_the_nearest_other_training_pair():
    observations = np.array([[0.0], [0.0], [10.0], [10.0], [10.0]])
    actions = np.array([[0.0, 0.0], [0.1, 0.3], [1.0, 1.0], [0.7, 1.0], [-1.0, -1.0]])
    index = SupportIndex({"observations": observations, "actions": actions}, None, num_reference=5)
    spread = data_action_spread(index, observations, actions, np.array([0, 2, 4]))
    # Row 0's nearest other pair is row 1 (same state, near action), never itself; row 2's is row 3. Row 4's action
    # is far from those at its own state: its nearest pair in joint (state, action) space is row 0, at the other
    # state (standardised state gap 2.04, action gap 1.41, against action gaps of 2.6 and 2.83 at its own state).
    np.testing.assert_allclose(spread, [np.sqrt((0.01 + 0.09) / 2), 0.3 / np.sqrt(2), 1.0], rtol=1e-5)


@pytest.fixture(scope="module")
def bank():
    """A small DROL learner's initial state and 32 probes with their banks and candidates (32, 4, 2)."""
    learner = Learner(DROLConfig(actor_hidden=(8,), critic_hidden=(8,), num_candidates=4), obs_dim=2,
                      action_dim=2)
    state = jax.jit(init_state, static_argnums=0)(learner, 0)
    obs = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (32, 2)), jnp.float32)
    latents = latent_bank(bank_key(0), jnp.arange(32), 4, 2)
    return learner, state, obs, latents, candidate_actions(learner.actor, state.actor_params, obs, latents)


def test_coverage_counts_data_actions_a_candidate_reaches_and_modes_a_candidate_sits_on(bank):
    learner, state, obs, latents, candidates = bank
    diagnose = jax.jit(coverage_diagnostics, static_argnums=0)
    cover = lambda actions, centres=None, scale=jnp.ones(2), reach=0.05: diagnose(
        learner, state, ProbeSet(jnp.arange(32), obs, actions, latents), scale, reach, centres, 0.05)
    on_candidate = candidates[:, 2]
    far = candidates[:, 2] + jnp.asarray([[0.0], [3.0]]).repeat(16, 0)  # every second probe's data action 3 away
    assert float(cover(on_candidate)["coverage"]) == 1.0
    assert float(cover(far)["coverage"]) == 0.5
    assert float(cover(far, scale=jnp.full(2, 100.0))["coverage"]) == 1.0  # measured in the data's own scale
    assert "modes_covered" not in cover(on_candidate)  # a task without mode centres

    # Four modes, one at each candidate: all four covered. The same bank against four modes of which only mode 0
    # has a candidate near it (as when all K candidates sit on one mode): one covered.
    assert float(cover(on_candidate, candidates)["modes_covered"]) == 4.0
    offsets = jnp.asarray([0.0, 3.0, -3.0, 6.0])[None, :, None]  # candidates lie in [-1, 1]^d: 3 away is far
    one_mode = candidates[:, :1] + offsets  # (32, 4, 2)
    assert float(cover(on_candidate, one_mode)["modes_covered"]) == 1.0
    assert float(cover(on_candidate, one_mode + 0.04)["modes_covered"]) == 1.0  # RMS 0.04 <= the noise scale 0.05
    assert float(cover(on_candidate, one_mode + 10.0)["modes_covered"]) == 0.0  # no mode near any candidate


# ------------------------------------------------------------------------------------------------
# Logged by a real sweep, and read by the report


@pytest.fixture(scope="module")
def analysed(small_sweep):
    """The session's small sweep (modes-2d; dynamic and static-routing at K 2 and 4; 3 seeds) read and analysed."""
    results = read_results(small_sweep)
    return results, analyse(results, reps=REPS)


def test_the_sweep_logs_the_yardsticks_and_the_analysis_reads_the_excess_and_the_ratios(analysed):
    results, analysis = analysed
    logs = results.logs.sel(task=TASK)
    assert logs["data_action_spread"].dims == ("ablation", "k", "seed", "probe")
    assert float(logs["num_modes"].max()) == 4  # modes-2d: four modes per state
    flips, chance = logs["flip_rate"].values[..., 1:], logs["return_rate_chance"].values[..., 1:]
    assert np.all((chance >= 0) & (chance <= flips + 1e-12))  # a chance share of the flips
    assert np.all((logs["coverage"].values >= 0) & (logs["coverage"].values <= 1))
    for ablation, k in results.groups:
        run = lambda name, ablation=ablation, k=k: analysis.diagnostics[(name, TASK, ablation, k)]
        assert np.all(run("modes_covered").curve.estimate.point <= k)  # one candidate sits on at most one mode
        np.testing.assert_allclose(run("return_excess").late_values,
                                   run("return_rate").late_values - run("return_rate_chance").late_values, atol=1e-12)
        spread = logs["data_action_spread"].sel(ablation=ablation, k=k).values.mean(-1)  # per seed
        np.testing.assert_allclose(run("winner_data_ratio").late_values,
                                   run("winner_data_dist_mean").late_values / spread, rtol=1e-9)
        reference = support_reference(results, TASK)
        np.testing.assert_allclose(run("support_dist_ratio").late_values,
                                   run("support_dist_mean").late_values / reference, rtol=1e-9)


def constant_summary(name: str, value: float):
    """A summary near `value` in 5 seeds over 6 rows (a small spread, so that it has an interval and a verdict), as
    analysis builds one of a logged quantity (a summary does not hold its name: the derived ones are built the same
    way)."""
    return synthetic_summary("flip_rate", [np.full(6, value) + 0.002 * seed for seed in range(5)])


def test_the_report_reads_returns_against_their_chance_level(analysed):
    results, analysis = analysed

    def sentence(returns: float, chance: float) -> str:
        replaced = with_diagnostics(analysis, **{
            "flip_rate/dynamic/4": constant_summary("flip_rate", 0.3),
            "return_rate/dynamic/4": constant_summary("return_rate", returns),
            "return_rate_chance/dynamic/4": constant_summary("return_rate_chance", chance),
            "return_excess/dynamic/4": constant_summary("return_excess", returns - chance)})
        return next(s for s in ownership_answer(results, replaced, TASK) if "K=4" in s and "Under dynamic" in s)

    # 80% of flips are returns, as chance gives after a few intervals at K=4: no back and forth.
    at_chance = sentence(0.24, 0.235)
    assert "(80% of flips)" in at_chance and "(79% of flips)" in at_chance
    assert "returns are within the threshold of chance" in at_chance and "back and forth)" not in at_chance
    assert re.search(r"Returns minus chance: difference 0\.0\d+ \[0\.0\d+, 0\.0\d+\], 5 seeds: negligible \(the "
                     r"whole interval lies within \+-0\.05\)", at_chance), at_chance
    assert "more often than chance (back and forth)" in sentence(0.24, 0.05)
    assert "less often than chance (ownership migrates" in sentence(0.02, 0.2)


def test_the_report_reads_distances_as_ratios_and_says_when_candidates_collapsed(analysed):
    results, analysis = analysed

    def sentence(**values: float) -> str:
        replaced = with_diagnostics(analysis, **{f"{name}/dynamic/4": constant_summary(name, value)
                                                 for name, value in values.items()})
        return next(s for s in support_answer(results, replaced, TASK, support_reference(results, TASK))
                    if s.startswith("dynamic K=4"))

    collapsed = sentence(winner_data_ratio=6.0, modes_covered=1.0, coverage=0.25)
    assert re.search(r"late, 6(\.0\d*)? \[6(\.0\d*)?, 6(\.0\d*)?\] times the data's own action scale", collapsed), collapsed
    assert "far from the data" in collapsed
    assert re.search(r"the candidates cover 1(\.00\d*)? \[1(\.00\d*)?, 1(\.0\d*)?\] of the 4 modes the data hold",
                     collapsed), collapsed
    assert "the candidates have collapsed onto fewer modes than the data hold" in collapsed
    assert re.search(r"within the out-of-support threshold for 0\.25\d* \[", collapsed), collapsed
    spread = sentence(winner_data_ratio=0.3, modes_covered=3.996, coverage=0.9)  # seeds 3.996 to 4.004: all four
    assert "read against 1 +- 0.25: within the data's own scale" in spread and "collapsed" not in spread
    about = sentence(winner_data_ratio=1.1, modes_covered=3.996, coverage=0.9)  # inside the band around 1
    assert "read against 1 +- 0.25: about the data's own scale" in about
    assert re.search(r"times the data's own nearest-neighbour median", spread)
