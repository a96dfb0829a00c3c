"""The registry of diagnostic quantities: every quantity the probe diagnostics log, once.

Each `Quantity` has its name, its dims (beyond seed and the row dim `step`), a label and unit for
figures and tables, the methods that log it, and one line of meaning. From it:

- the run log (drol_diag.runfolder.store.RunLog) takes each logged variable's dims (`row_dims`),
- the report takes its labels, units and which quantities it summarises (`reported`),
- the README's table of quantities is checked against it (`markdown_table`, tests/test_layers.py).

A new per-probe quantity is its computation (diagnostics.probes, returned in the dict of
`probe_diagnostics`) plus one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

DROL, FQL = "drol", "fql"
BOTH = (DROL, FQL)
ROW, STATIC, DERIVED = "row", "static", "derived"  # logged per (seed, step); once per run; computed by the report


@dataclass(frozen=True)
class Quantity:
    """One diagnostic quantity."""

    name: str
    dims: tuple[str, ...]  # ROW: dims beyond (seed, step); STATIC: all of its dims
    label: str  # short, for axes and table headers
    unit: str  # what its numbers count
    meaning: str  # one line: what it is
    methods: tuple[str, ...] = (DROL,)  # the methods whose runs log it (FQL has no candidates)
    kind: str = ROW  # ROW, STATIC or DERIVED
    reported: str = ""  # "summary": the report shows its mean over seeds, early and late; "per_probe": a
    # per-probe count the report derives from flips_total


QUANTITIES: dict[str, Quantity] = {q.name: q for q in (
    Quantity("winner", ("probe",), "owner", "candidate index",
             "owner of each probe's data action under the run's routing rule"),
    Quantity("nearest", ("probe",), "nearest candidate", "candidate index",
             "the geometrically nearest candidate of each probe's bank"),
    Quantity("flip_rate", (), "flip rate", "fraction of probes per log interval",
             "fraction of probes whose winner changed since the previous row (NaN at the first row)",
             reported="summary"),
    Quantity("return_rate", (), "return rate (A->B->A)", "fraction of probes per log interval",
             "fraction of probes whose new winner is one they owned before and lost (A -> B -> A)",
             reported="summary"),
    Quantity("nearest_flip_rate", (), "nearest flip rate", "fraction of probes per log interval",
             "fraction of probes whose nearest candidate changed since the previous row", reported="summary"),
    Quantity("owner_mismatch", (), "owner not nearest", "fraction of probes",
             "fraction of probes whose owner is not the nearest (a frozen owner overtaken: the persistent tether)",
             reported="summary"),
    Quantity("winner_ari", (), "owner partition ARI", "adjusted Rand index vs previous log",
             "adjusted Rand index between this row's and the previous row's partition of the probes by winner",
             reported="summary"),
    Quantity("flips_total", ("probe",), "flips", "count", "cumulative flips per probe"),
    Quantity("winner_data_dist", ("probe",), "winner-to-data distance", "RMS per action dim",
             "RMS-per-dimension distance between each probe's winner and its data action"),
    Quantity("winner_data_dist_mean", (), "winner-to-data distance", "RMS per action dim",
             "mean over probes of winner_data_dist", reported="summary"),
    Quantity("winner_data_dist_quantiles", ("quantile",), "winner-to-data distance quantiles", "RMS per action dim",
             "quantiles 0.5, 0.9, 0.99 over probes of winner_data_dist"),
    Quantity("support_dist", ("probe",), "distance to support", "standardised joint (state, action) space",
             "distance from the deployed action (one fresh prior sample) to the nearest training (state, action) "
             "pair", methods=BOTH),
    Quantity("support_dist_mean", (), "distance to support", "deployed action to nearest training pair",
             "mean over probes of support_dist", methods=BOTH, reported="summary"),
    Quantity("support_dist_ref", ("reference",), "held-out distance to support",
             "standardised joint (state, action) space",
             "the same distance for held-out pairs: the data's own nearest-neighbour scale", methods=BOTH,
             kind=STATIC),
    Quantity("ood_threshold", (), "out-of-support threshold", "standardised joint (state, action) space",
             "95th percentile of support_dist_ref", methods=BOTH, kind=STATIC),
    Quantity("ood_frac", (), "out of support", "fraction of deployed actions",
             "fraction of deployed actions farther than ood_threshold", methods=BOTH, reported="summary"),
    Quantity("q_winner", (), "Q(winner)", "Q units", "min-ensemble Q at the winner, mean over probes"),
    Quantity("q_data", (), "Q(data action)", "Q units", "min-ensemble Q at the data action, mean over probes",
             methods=BOTH),
    Quantity("q_deployed", (), "Q(deployed)", "Q units", "min-ensemble Q at the deployed action, mean over probes",
             methods=BOTH),
    Quantity("q_gap", (), "Q(winner) - Q(data action)", "Q units", "q_winner - q_data", kind=DERIVED,
             reported="summary"),
    Quantity("grad_cos", (), "cos(grad BC, grad critic)", "cosine",
             "cosine between the actor-parameter gradients of the imitation term (FQL: distillation) and of L_q "
             "on the probes", methods=BOTH, reported="summary"),
    Quantity("grad_cos_layer", ("layer",), "cos(grad BC, grad critic) per layer", "cosine",
             "grad_cos per Dense layer of the actor", methods=BOTH),
    Quantity("grad_norm_ratio", (), "|grad BC| / |grad critic|", "ratio (bc_coef included)",
             "|bc_coef grad L_bc| / |grad L_q| (FQL: alpha and the distillation term)", methods=BOTH,
             reported="summary"),
    Quantity("action_cos", ("probe",), "cos(pull to data, critic ascent)", "cosine",
             "cosine between (a - winner) and the critic's ascent dQ/da at the winner (FQL: the pull towards the "
             "flow's action at the one-step action)", methods=BOTH),
    Quantity("conflict_frac", (), "BC opposes critic", "fraction of probes",
             "fraction of probes where action_cos < 0", methods=BOTH, reported="summary"),
    Quantity("load", ("candidate",), "load", "fraction of probes", "fraction of probes each candidate owns"),
    Quantity("load_entropy", (), "load entropy", "entropy / log K", "entropy of load / log K",
             reported="summary"),
    Quantity("dead_candidates", (), "dead candidates", "candidates owning no probe",
             "candidates owning no probe", reported="summary"),
    Quantity("candidate_spread", (), "candidate spread", "action distance",
             "mean pairwise distance of a state's K candidates"),
    Quantity("flips_per_probe", (), "flips per probe over training", "count", "mean of flips_total over probes",
             kind=DERIVED, reported="per_probe"),
    Quantity("never_flipped", (), "probes never reassigned", "count", "fraction of probes with flips_total 0",
             kind=DERIVED, reported="per_probe"),
)}


def row_dims() -> dict[str, tuple[str, ...]]:
    """{name: dims beyond (seed, step)} of every quantity logged per row that has such dims."""
    return {q.name: q.dims for q in QUANTITIES.values() if q.kind == ROW and q.dims}


def reported(kind: str) -> dict[str, Quantity]:
    """The quantities the report shows as `kind` ("summary" or "per_probe"), in registry order."""
    return {name: q for name, q in QUANTITIES.items() if q.reported == kind}


def markdown_table() -> str:
    """The README's table of logged quantities (one row each), as the README must hold it."""
    lines = ["| name | dims beyond (seed, step) | methods | meaning |", "|---|---|---|---|"]
    for q in QUANTITIES.values():
        if q.kind == DERIVED:
            continue
        dims = ", ".join(q.dims) if q.kind == ROW else f"static: ({', '.join(q.dims)})"
        meaning = q.meaning.replace("|", "\\|")  # (a bare | would end the cell)
        lines.append(f"| `{q.name}` | {dims or '-'} | {', '.join(q.methods)} | {meaning} |")
    return "\n".join(lines) + "\n"
