"""The registry of diagnostic quantities: each logged or report-derived quantity declared once, with its dims,
label, unit, methods, meaning, reporting threshold, derivation, per-probe mean, calibration and study finding.
Every table the other layers read is a view of these declarations (`row_dims` for the run log; `reported`,
`REPORTING`, `CALIBRATIONS`, `derive` and `STUDY_FINDINGS` for the report; `markdown_table` and
`materiality_table` for docs/). A new quantity is its computation (diagnostics.probes) plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

DROL, FQL = "drol", "fql"
BOTH = (DROL, FQL)
ROW, STATIC, DERIVED = "row", "static", "derived"  # logged per (seed, step); once per run; computed by the report
EVALUATION = "evaluation"  # logged per (seed, eval_step), beside the evaluation's scores
MC_DIMS = ("seed", "eval_step")


@dataclass(frozen=True)
class Reporting:
    """How the report judges and draws a reported quantity."""

    material: float | None  # the smallest difference the report calls material; None: never called material
    why: str  # one line: why that threshold
    low: float | None = None  # the least value the quantity can take (figure axes stop there)
    high: float | None = None  # the largest


DIFFERENCE, RANK_CORRELATION = "difference", "rank correlation"  # how an estimate is held against its truth


@dataclass(frozen=True)
class Calibration:
    """A diagnostic estimate beside the ground truth it estimates, and the bar their agreement must clear:
    DIFFERENCE, |late estimate - late truth| per seed at most `bar`; RANK_CORRELATION, Spearman per seed of the
    per-probe estimate against the truth (minus the truth where `decreasing`; diagnostics.calibration) at least
    `bar`; None: shown, never judged."""

    truth: str  # the QUANTITIES name of what it estimates
    measure: str  # DIFFERENCE or RANK_CORRELATION
    bar: float | None
    text: str  # one line: what the estimate claims to measure and what the truth is
    estimate: str = ""  # the QUANTITIES name that declares it (filled in by CALIBRATIONS)
    decreasing: bool = True  # RANK_CORRELATION: the estimate falls as the truth rises (a distance, a log-density)
    scale: str = ""  # DIFFERENCE: the bar is in units of this quantity's late value per seed ("": absolute)
    multi_step: bool = False  # judged on tasks with episodes longer than one step only (else the same thing twice)

    def within_bar(self, agreement: float) -> bool | None:
        """Whether an agreement value clears the bar; None without a bar or for NaN."""
        if self.bar is None or agreement != agreement:
            return None
        return agreement >= self.bar if self.measure == RANK_CORRELATION else abs(agreement) <= self.bar


@dataclass(frozen=True)
class Quantity:
    """One diagnostic quantity."""

    name: str
    dims: tuple[str, ...]  # ROW: dims beyond (seed, step); STATIC, EVALUATION: all of its dims
    label: str  # short, for axes and table headers
    unit: str  # what its numbers count
    meaning: str  # one line: what it is
    methods: tuple[str, ...] = (DROL,)  # the methods whose runs log it (FQL has no candidates)
    kind: str = ROW  # ROW, STATIC, EVALUATION or DERIVED
    reported: str = ""  # "summary": mean over seeds, early and late; "per_probe": a count derived from flips_total
    reporting: Reporting | None = None  # how the report judges and draws it (every reported quantity has one)
    derived: tuple[str, ...] = ()  # DERIVED: (operation in DERIVATIONS, its logged operands...)
    probe_mean: str = ""  # a per-probe quantity's per-row mean over probes, by which a calibration shows it late
    calibration: Calibration | None = None  # the ground truth it estimates and the bar their agreement must clear
    study: tuple[int, str] | None = None  # docs/findings.md: (least action dims it applies from, what was found)


PROBE_SHARE = "5 points of the probe share: about three standard errors of one seed's share on 1024 probes " \
              "(0.016 at one half), small beside the gaps between routing rules (static 0, random (K-1)/K)"
SHARE = Reporting(0.05, PROBE_SHARE, 0.0, 1.0)  # a share of the probes

QUANTITIES: dict[str, Quantity] = {q.name: q for q in (
    Quantity("winner", ("probe",), "owner", "candidate index",
             "owner of each probe's data action under the run's routing rule"),
    Quantity("nearest", ("probe",), "nearest candidate", "candidate index",
             "the geometrically nearest candidate of each probe's bank"),
    Quantity("flip_rate", (), "flip rate", "fraction of probes per log interval",
             "fraction of probes whose winner changed since the previous row (NaN at the first row)",
             reported="summary", reporting=SHARE),
    Quantity("return_rate", (), "return rate (A->B->A)", "fraction of probes per log interval",
             "fraction of probes whose new winner is one they owned before and lost (A -> B -> A)",
             reported="summary", reporting=SHARE),
    Quantity("return_rate_chance", (), "return rate by chance", "fraction of probes per log interval",
             "the return rate if each flip went to a uniformly drawn other candidate, given each probe's history: "
             "sum over flipped probes of (former owners other than the one it leaves) / (K - 1), over all probes",
             reported="summary", reporting=SHARE),
    Quantity("return_excess", (), "return rate over chance", "fraction of probes per log interval",
             "return_rate - return_rate_chance", kind=DERIVED, reported="summary",
             derived=("minus", "return_rate", "return_rate_chance"), reporting=Reporting(0.05, PROBE_SHARE, -1.0, 1.0)),
    Quantity("nearest_flip_rate", (), "nearest flip rate", "fraction of probes per log interval",
             "fraction of probes whose nearest candidate changed since the previous row", reported="summary",
             reporting=SHARE),
    Quantity("owner_mismatch", (), "owner not nearest", "fraction of probes",
             "fraction of probes whose owner is not the nearest (a frozen owner overtaken: the persistent tether)",
             reported="summary", reporting=SHARE),
    Quantity("winner_ari", (), "owner partition ARI", "adjusted Rand index vs previous log",
             "adjusted Rand index between this row's and the previous row's partition of the probes by winner",
             reported="summary",
             reporting=Reporting(0.05, "a twentieth of the range from unrelated partitions (0) to the same one (1)",
                                 None, 1.0)),
    Quantity("flips_total", ("probe",), "flips", "count",
             "cumulative flips per probe"),
    Quantity("winner_data_dist", ("probe",), "winner-to-data distance", "RMS per action dim",
             "RMS-per-dimension distance between each probe's winner and its data action"),
    Quantity("winner_data_dist_mean", (), "winner-to-data distance", "RMS per action dim",
             "mean over probes of winner_data_dist", reported="summary",
             reporting=Reporting(0.05, "the modes family's action noise (std 0.05 per dimension): a smaller move "
                                 "stays within the data's own spread around a mode", 0.0)),
    Quantity("winner_data_dist_quantiles", ("quantile",), "winner-to-data distance quantiles", "RMS per action dim",
             "quantiles 0.5, 0.9, 0.99 over probes of winner_data_dist"),
    Quantity("data_action_spread", ("seed", "probe"), "data action spread", "RMS per action dim",
             "the yardstick of winner_data_dist: distance between each probe's data action and the action of the "
             "nearest other training pair (standardised joint (state, action) space)", kind=STATIC),
    Quantity("winner_data_ratio", (), "winner-to-data distance / data spread", "ratio",
             "winner_data_dist_mean / the mean over probes of data_action_spread", kind=DERIVED, reported="summary",
             derived=("over_probe_mean", "winner_data_dist_mean", "data_action_spread"),
             reporting=Reporting(0.1, "a tenth of the data's own action scale (data_action_spread)", 0.0)),
    Quantity("coverage", (), "data actions covered", "fraction of probes",
             "fraction of probes whose data action some candidate of the probe's bank reaches within ood_threshold "
             "(the distance support_dist measures, at the probe's own state)", reported="summary", reporting=SHARE),
    Quantity("modes_covered", (), "modes covered", "modes per probe state",
             "modes with some candidate within mode_noise_scale of their centre, mean over probes (tasks with mode "
             "centres)", reported="summary",
             reporting=Reporting(0.5, "half a mode per probe state: one mode gained or lost at half the probes", 0.0)),
    Quantity("num_modes", (), "modes", "count",
             "the task's modes per state (tasks with mode centres)", kind=STATIC),
    Quantity("mode_noise_scale", (), "mode noise scale", "RMS per action dim",
             "95th percentile of the data actions' distance to their nearest mode centre (tasks with mode centres)",
             kind=STATIC),
    Quantity("support_dist", ("probe",), "distance to support", "standardised joint (state, action) space",
             "distance from the deployed action (one fresh prior sample) to the nearest training (state, action) pair",
             methods=BOTH, probe_mean="support_dist_mean",
             calibration=Calibration("behavior_logp", RANK_CORRELATION, 0.7,
                                     "the deployed action's distance to the nearest training pair should order "
                                     "deployed actions as the behaviour's true log-density there does, reversed: "
                                     "the farther, the less likely"),
             study=(5, "ranked deployed actions by the true behaviour density with a rank correlation of 0.41 to 0.61 "
                       "in 5 action dimensions (bar 0.7): a coarse ordering only")),
    Quantity("support_dist_mean", (), "distance to support", "deployed action to nearest training pair",
             "mean over probes of support_dist", methods=BOTH, reported="summary",
             reporting=Reporting(0.1, "a tenth of one standard deviation of the standardised (state, action) "
                                 "space, about the data's own nearest-neighbour distance on modes-2d", 0.0)),
    Quantity("support_dist_ref", ("reference",), "held-out distance to support",
             "standardised joint (state, action) space",
             "the same distance for held-out pairs: the data's own nearest-neighbour scale", methods=BOTH, kind=STATIC),
    Quantity("ood_threshold", (), "out-of-support threshold", "standardised joint (state, action) space",
             "95th percentile of support_dist_ref", methods=BOTH, kind=STATIC),
    Quantity("support_dist_ratio", (), "distance to support / held-out", "ratio",
             "support_dist_mean / the median of support_dist_ref", methods=BOTH, kind=DERIVED, reported="summary",
             derived=("over_median", "support_dist_mean", "support_dist_ref"),
             reporting=Reporting(0.5, "half the data's own median nearest-neighbour distance", 0.0)),
    Quantity("ood_frac", (), "out of support", "fraction of deployed actions",
             "fraction of deployed actions farther than ood_threshold", methods=BOTH, reported="summary",
             reporting=Reporting(0.05, "the held-out data's own rate (5% by construction)", 0.0, 1.0),
             calibration=Calibration("true_ood_frac", DIFFERENCE, 0.1,
                                     "the share of deployed actions beyond the data's nearest-neighbour 95% "
                                     "distance, against the share whose true behaviour log-density lies below the "
                                     "held-out data's own 5% quantile"),
             study=(5, "under-stated the true out-of-support share by 0.26 to 0.36 in 5 action dimensions (cliff-5d, "
                       "arc-5d): read it as a lower bound on the share truly out of support")),
    Quantity("q_deployed", (), "Q(deployed)", "Q units",
             "min-ensemble Q at the deployed action, mean over probes", methods=BOTH,
             calibration=Calibration("true_value_deployed", DIFFERENCE, None,
                                     "the learned min-ensemble Q at the deployed action against its true value "
                                     "(the difference is the critic's bias, critic_bias)")),
    Quantity("q_winner", (), "Q(winner)", "Q units",
             "min-ensemble Q at the winner, mean over probes",
             calibration=Calibration("true_value_winner", DIFFERENCE, None,
                                     "the learned min-ensemble Q at the winner against its true value "
                                     "(critic_bias_winner)")),
    Quantity("q_data", (), "Q(data action)", "Q units",
             "min-ensemble Q at the data action, mean over probes", methods=BOTH),
    Quantity("q_gap", (), "Q(winner) - Q(data action)", "Q units",
             "q_winner - q_data", kind=DERIVED, reported="summary", derived=("minus", "q_winner", "q_data"),
             reporting=Reporting(None, "Q scales differ with the task's rewards and discount: differences in Q "
                                 "units are shown, never called material")),
    Quantity("true_value_winner", (), "true value (winner)", "return units",
             "the task's true value at the winner, mean over probes (tasks with true_value)"),
    Quantity("true_value_data", (), "true value (data action)", "return units",
             "the task's true value at the data action, mean over probes (tasks with true_value)", methods=BOTH),
    Quantity("true_value_deployed", (), "true value (deployed)", "return units",
             "the task's true value at the deployed action, mean over probes (tasks with true_value)", methods=BOTH,
             reported="summary",
             reporting=Reporting(None, "its scale follows the task's rewards: shown, never called material")),
    Quantity("critic_bias", (), "Q - true value (deployed)", "return units",
             "q_deployed - true_value_deployed: the learned min-ensemble Q minus the true value at the deployed "
             "action, mean over probes (tasks with true_value)", methods=BOTH, reported="summary",
             reporting=Reporting(None, "Q scales differ with the task's rewards and discount: differences in "
                                 "return units are shown, never called material")),
    Quantity("critic_bias_winner", (), "Q - true value (winner)", "return units",
             "q_winner - true_value_winner (tasks with true_value)"),
    # The regret split: the oracle's lead over the deployed action = no candidate reaching it + the deployed sample
    # falling short of the best candidate (the paper's claim: K candidates cover the rare good actions).
    Quantity("true_value_best_candidate", (), "true value (best candidate)", "return units",
             "the best true value among the probe's K candidates, mean over probes (tasks with true_value)"),
    Quantity("true_value_oracle", (), "true value (oracle)", "return units",
             "the task's best_value at the probe state: the best supported action's true value, mean over probes "
             "(tasks with best_value)", methods=BOTH),
    Quantity("q_best_candidate", (), "Q(best candidate)", "Q units",
             "the best min-ensemble Q among the probe's K candidates, mean over probes"),
    Quantity("regret_no_candidate", (), "oracle - best candidate (true value)", "return units",
             "true_value_oracle - true_value_best_candidate: the oracle's lead that no candidate reaches",
             kind=DERIVED, reported="summary", derived=("minus", "true_value_oracle", "true_value_best_candidate"),
             reporting=Reporting(None, "its scale follows the task's rewards: shown, never called material")),
    Quantity("regret_sampling", (), "best candidate - deployed (true value)", "return units",
             "true_value_best_candidate - true_value_deployed: how far the deployed sample falls short of the best "
             "candidate", kind=DERIVED, reported="summary",
             derived=("minus", "true_value_best_candidate", "true_value_deployed"),
             reporting=Reporting(None, "its scale follows the task's rewards: shown, never called material")),
    Quantity("q_regret_sampling", (), "Q(best candidate) - Q(deployed)", "Q units",
             "q_best_candidate - q_deployed: regret_sampling in the critic's view (every task)", kind=DERIVED,
             reported="summary", derived=("minus", "q_best_candidate", "q_deployed"),
             reporting=Reporting(None, "Q scales differ with the task's rewards and discount: differences in Q "
                                 "units are shown, never called material")),
    Quantity("true_conflict_frac", (), "BC opposes true ascent", "fraction of probes",
             "fraction of probes where (data action - winner) points against the true value's ascent direction (its "
             "action gradient) at the winner: conflict_frac with the true value for the critic (tasks with "
             "true_value)", reported="summary", reporting=SHARE),
    Quantity("behavior_logp_winner", (), "behaviour log-density (winner)", "nats",
             "mean over probes of max(behaviour log-density at the winner, -50): the floor stands for no support "
             "(log 0) (tasks with behavior_log_density)"),
    Quantity("behavior_logp_data", (), "behaviour log-density (data action)", "nats",
             "mean over probes of max(behaviour log-density at the data action, -50) (tasks with behavior_log_density)",
             methods=BOTH),
    Quantity("behavior_logp_deployed", (), "behaviour log-density (deployed)", "nats",
             "mean over probes of max(behaviour log-density at the deployed action, -50) (tasks with "
             "behavior_log_density)", methods=BOTH, reported="summary",
             reporting=Reporting(1.0, "one nat: the deployed actions' data density changed by a factor e", -50.0)),
    Quantity("behavior_logp", ("probe",), "behaviour log-density (deployed), per probe", "nats",
             "max(behaviour log-density at each probe's deployed action, -50): the truth support_dist estimates, "
             "probe by probe (tasks with behavior_log_density)", methods=BOTH, probe_mean="behavior_logp_deployed"),
    Quantity("true_ood_threshold", (), "true out-of-support threshold", "nats",
             "5th percentile of the behaviour log-density at held-out data actions (tasks with behavior_log_density)",
             methods=BOTH, kind=STATIC),
    Quantity("true_ood_frac", (), "truly out of support", "fraction of deployed actions",
             "fraction of deployed actions whose behaviour log-density is below true_ood_threshold (tasks with "
             "behavior_log_density)", methods=BOTH, reported="summary",
             reporting=Reporting(0.05, "the held-out data's own rate (5% by construction)", 0.0, 1.0)),
    Quantity("density_logp", ("probe",), "estimated log-density (deployed), per probe", "nats",
             "max(the learned behaviour density (diagnostics.density) at each probe's deployed action, -50), as "
             "behavior_logp", methods=BOTH,
             probe_mean="density_logp_deployed",
             calibration=Calibration("behavior_logp", RANK_CORRELATION, 0.8,
                                     "the learned behaviour density should order deployed actions as the "
                                     "behaviour's true log-density does", decreasing=False)),
    Quantity("density_logp_deployed", (), "estimated log-density (deployed)", "nats",
             "mean over probes of density_logp", methods=BOTH, reported="summary",
             reporting=Reporting(1.0, "one nat: the deployed actions' estimated data density changed by a factor e")),
    Quantity("density_logp_winner", (), "estimated log-density (winner)", "nats",
             "mean over probes of max(the learned behaviour density at the winner, -50)"),
    Quantity("density_logp_data", (), "estimated log-density (data action)", "nats",
             "mean over probes of max(the learned behaviour density at the data action, -50)", methods=BOTH),
    Quantity("density_ood_threshold", (), "estimated out-of-support threshold", "nats",
             "5th percentile of the learned behaviour density at held-out data pairs", methods=BOTH, kind=STATIC),
    Quantity("density_ood_frac", (), "out of support (density)", "fraction of deployed actions",
             "fraction of deployed actions whose learned log-density is below density_ood_threshold (true_ood_frac's "
             "rule with the estimate)", methods=BOTH, reported="summary",
             reporting=Reporting(0.05, "the held-out data's own rate (5% by construction)", 0.0, 1.0),
             calibration=Calibration("true_ood_frac", DIFFERENCE, 0.1,
                                     "the share of deployed actions whose learned log-density lies below the held-out "
                                     "data's 5% quantile of it, against the same share with the true density"),
             study=(5, "under-stated the true out-of-support share by 0.12 to 0.38 where the drift was partial in 5 "
                       "and 8 action dimensions (kNN's ood_frac by 0.26 to 0.90): a lower bound, a much tighter "
                       "one")),
    Quantity("grad_cos", (), "cos(grad BC, grad critic)", "cosine",
             "cosine between the actor-parameter gradients of the imitation term (FQL: distillation) and of L_q on "
             "the probes", methods=BOTH, reported="summary",
             reporting=Reporting(0.1, "a tenth of the way from orthogonal (0) to aligned (1) gradients", -1.0, 1.0)),
    Quantity("grad_cos_layer", ("layer",), "cos(grad BC, grad critic) per layer", "cosine",
             "grad_cos per Dense layer of the actor", methods=BOTH),
    Quantity("grad_norm_ratio", (), "|grad BC| / |grad critic|", "ratio (bc_coef included)",
             "|bc_coef grad L_bc| / |grad L_q| (FQL: alpha and the distillation term)", methods=BOTH,
             reported="summary", reporting=Reporting(
                 None, "its scale follows bc_coef and the task's reward scale: shown, never called material", 0.0)),
    Quantity("action_cos", ("probe",), "cos(pull to data, critic ascent)", "cosine",
             "cosine between (a - winner) and the critic's ascent dQ/da at the winner (FQL: the pull towards the "
             "flow's action at the one-step action)", methods=BOTH),
    Quantity("conflict_frac", (), "BC opposes critic", "fraction of probes",
             "fraction of probes where action_cos < 0", methods=BOTH, reported="summary",
             reporting=SHARE, calibration=Calibration("true_conflict_frac", DIFFERENCE, 0.15,
                                     "the share of probes where the pull to the data action opposes the learned "
                                     "critic's action gradient at the winner, against the same share with the true "
                                     "value's gradient"),
             study=(5, "over-stated the true-gradient conflict by 0.19 to 0.35 in 5 action dimensions (arc-5d): it "
                       "measures the conflict with the learned critic, not whether BC truly holds the actor back")),
    Quantity("conflict_frac_in_support", (), "BC opposes critic (winner in support)", "fraction of probes",
             "conflict_frac over the probes whose winner the learned density places in support (log-density at least "
             "density_ood_threshold): where the critic's gradient is not extrapolation; NaN with no such probe",
             reported="summary", reporting=SHARE,
             calibration=Calibration("true_conflict_frac_in_support", DIFFERENCE, 0.15,
                                     "the conflict share with the learned critic's gradient against the true value's, "
                                     "over the probes whose winner the learned density places in support")),
    Quantity("true_conflict_frac_in_support", (), "BC opposes true ascent (winner in support)", "fraction of probes",
             "true_conflict_frac over the probes of conflict_frac_in_support (tasks with true_value)",
             reported="summary", reporting=SHARE),
    Quantity("load", ("candidate",), "load", "fraction of probes",
             "fraction of probes each candidate owns"),
    Quantity("load_entropy", (), "load entropy", "entropy / log K",
             "entropy of load / log K", reported="summary",
             reporting=Reporting(0.05, "5% of the largest entropy (log K, every candidate owning as many probes)",
                                 0.0, 1.0)),
    Quantity("dead_candidates", (), "dead candidates", "candidates owning no probe",
             "candidates owning no probe", reported="summary", reporting=Reporting(1.0, "one whole candidate", 0.0)),
    Quantity("candidate_spread", (), "candidate spread", "action distance",
             "mean pairwise distance of a state's K candidates"),
    Quantity("eval_counted", ("seed", "eval_step"), "counted evaluation", "bool",
             "whether the evaluation counts towards the score: on the run's final schedule (a multiple of "
             "eval_interval, or the run's last update); false for the last evaluation of a leg a resume extended",
             methods=BOTH, kind=EVALUATION),
    # The critic against the Monte-Carlo returns of the evaluation episodes (diagnostics.montecarlo): per evaluation,
    # over the visited steps whose return is complete; NaN with mc_steps 0 where none is.
    Quantity("mc_return", MC_DIMS, "Monte-Carlo return", "return units",
             "discounted return-to-go from each counted visited step of the evaluation episodes, mean",
             methods=BOTH, kind=EVALUATION),
    Quantity("mc_abs_return", MC_DIMS, "mean |Monte-Carlo return|", "return units",
             "mean absolute return-to-go of the counted steps: the return scale REDQ normalises the bias by",
             methods=BOTH, kind=EVALUATION),
    Quantity("mc_q", MC_DIMS, "Q (visited)", "Q units",
             "min-ensemble Q at each counted visited (s, a), mean", methods=BOTH, kind=EVALUATION),
    Quantity("mc_q_mean", MC_DIMS, "ensemble-mean Q (visited)", "Q units",
             "ensemble-mean Q at each counted visited (s, a), mean", methods=BOTH, kind=EVALUATION),
    Quantity("mc_bias", MC_DIMS, "Q - Monte-Carlo return", "return units",
             "mc_q - mc_return: the learned min-ensemble Q minus the return that followed, over the policy's own "
             "counted steps (REDQ's bias)", methods=BOTH, kind=EVALUATION, reported="summary",
             reporting=Reporting(None, "return units: shown, never called material"),
             calibration=Calibration("critic_bias", DIFFERENCE, 0.1,
                                     "the critic's bias against the policy's own returns, against its bias against "
                                     "the true value at the deployed action on the probe states (bar: a tenth of "
                                     "the return scale, mc_abs_return)", scale="mc_abs_return", multi_step=True)),
    Quantity("mc_bias_normalized", MC_DIMS, "(Q - return) / mean |return|", "fraction of the return scale",
             "mc_bias over mc_abs_return (REDQ's normalised bias)", methods=BOTH, kind=EVALUATION,
             reported="summary", reporting=Reporting(0.1, "a tenth of the return scale")),
    Quantity("mc_bias_std", MC_DIMS, "std (Q - return) / mean |return|", "fraction of the return scale",
             "standard deviation over counted steps of Q - return, over mc_abs_return (REDQ's spread)",
             methods=BOTH, kind=EVALUATION, reported="summary",
             reporting=Reporting(0.1, "a tenth of the return scale", 0.0)),
    Quantity("mc_episode_length", MC_DIMS, "episode length", "steps",
             "mean length of the evaluation episodes held against the critic (1: one-step episodes, whose "
             "Monte-Carlo return is the true value)", methods=BOTH, kind=EVALUATION),
    Quantity("mc_steps", MC_DIMS, "counted steps", "steps",
             "visited steps whose return is complete (their episode terminated, or the steps a time limit cut off "
             "carry under 1% of the discount weight); 0: every mc_ quantity is NaN", methods=BOTH, kind=EVALUATION),
    Quantity("flips_per_probe", (), "flips per probe over training", "count",
             "mean of flips_total over probes", kind=DERIVED, reported="per_probe",
             derived=("probe_mean", "flips_total"), reporting=Reporting(1.0, "one flip per probe over training", 0.0)),
    Quantity("never_flipped", (), "probes never reassigned", "fraction of probes",
             "fraction of probes with flips_total 0", kind=DERIVED, reported="per_probe",
             derived=("zero_share", "flips_total"), reporting=SHARE),
)}

# Views of the declarations above, for the layers that read them by kind.
REPORTING: dict[str, Reporting] = {q.name: q.reporting for q in QUANTITIES.values() if q.reporting is not None}
CALIBRATIONS: tuple[Calibration, ...] = tuple(sorted(  # the judged pairs first, then the critic's bias (no bar)
    (replace(q.calibration, estimate=q.name) for q in QUANTITIES.values() if q.calibration is not None),
    key=lambda c: c.bar is None))
STUDY_FINDINGS: dict[str, tuple[int, str]] = {q.name: q.study for q in QUANTITIES.values() if q.study is not None}
PROBE_MEANS: dict[str, str] = {q.name: q.probe_mean for q in QUANTITIES.values() if q.probe_mean}

# How a DERIVED quantity is computed from its logged operands, each (seeds, steps, ...) as numpy arrays.
DERIVATIONS: dict[str, Callable[..., np.ndarray]] = {
    "minus": lambda a, b: a - b,  # an excess over a yardstick (returns over chance; Q(winner) - Q(data))
    "over_probe_mean": lambda a, spread: a / np.nanmean(spread, axis=-1)[:, None],  # per seed, its probes' scale
    "over_median": lambda a, reference: a / np.nanmedian(reference),  # the run's held-out distances
    "probe_mean": lambda per_probe: np.where(np.isnan(per_probe).any(-1), np.nan, per_probe.mean(-1)),
    "zero_share": lambda per_probe: np.where(np.isnan(per_probe).any(-1), np.nan, (per_probe == 0).mean(-1)),
}


def operands() -> tuple[str, ...]:
    """Every logged quantity a derived one is computed from."""
    return tuple(dict.fromkeys(name for q in QUANTITIES.values() for name in q.derived[1:]))


def derive(name: str, logged: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """A DERIVED quantity from its logged operands ({name: (seeds, steps, ...)}); None where one is missing."""
    operation, *names = QUANTITIES[name].derived
    if any(operand not in logged for operand in names):
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        return DERIVATIONS[operation](*(np.asarray(logged[operand], np.float64) for operand in names))


def materiality_table() -> str:
    """docs/reading-the-report.md's table of materiality thresholds (one row per reported quantity)."""
    lines = ["| quantity | material difference | why |", "|---|---|---|"]
    for name, reporting in REPORTING.items():
        threshold = "none" if reporting.material is None else f"{reporting.material:g}"
        lines.append(f"| `{name}` ({QUANTITIES[name].unit}) | {threshold} | {reporting.why} |")
    return "\n".join(lines) + "\n"


def row_dims() -> dict[str, tuple[str, ...]]:
    """{name: dims beyond (seed, step)} of every quantity logged per row that has such dims."""
    return {q.name: q.dims for q in QUANTITIES.values() if q.kind == ROW and q.dims}


def reported(kind: str) -> dict[str, Quantity]:
    """The quantities the report shows as `kind` ("summary" or "per_probe"), in registry order."""
    return {name: q for name, q in QUANTITIES.items() if q.reported == kind}


def markdown_table() -> str:
    """docs/diagnostics.md's table of logged quantities (one row each)."""
    lines = ["| name | dims beyond (seed, step) | methods | meaning | material difference |", "|---|---|---|---|---|"]
    for q in QUANTITIES.values():
        if q.kind == DERIVED:
            continue
        dims = ", ".join(q.dims) if q.kind == ROW else f"{q.kind}: ({', '.join(q.dims)})"
        meaning = q.meaning.replace("|", "\\|")  # (a bare | would end the cell)
        material = REPORTING[q.name].material if q.name in REPORTING else "-"  # (see materiality_table)
        lines.append(f"| `{q.name}` | {dims or '-'} | {', '.join(q.methods)} | {meaning} | "
                     f"{'none' if material is None else material} |")
    return "\n".join(lines) + "\n"
