"""Uncertainty and sensitivity of the recommended split: the replicate summary's companions, one assumption
varied at a time (tornado), the break-even value of each assumption, the even split compared, and the
sentence for leaders."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis import config
from analysis.errors import ConfigError
from analysis.staffing.apportion import apportion_many
from analysis.staffing.assumptions import SIZING_SECTIONS, _leaves, teams, value, with_value
from analysis.staffing.chain import _keys, required_point


def split_label(allocation: pd.DataFrame, column: str = "social_workers") -> pd.Series:
    """The allocation of each replicate as "a/b/c/d" in team order (one label per replicate)."""
    keys = _keys(allocation)
    frame = allocation if keys else allocation.assign(replicate=0)
    return (
        frame[column]
        .astype(int)
        .astype(str)
        .groupby(frame["replicate"], sort=True)
        .agg("/".join)
        .rename("split")
    )


def replicate_summary(allocation: pd.DataFrame, assumptions: dict) -> dict[str, pd.DataFrame]:
    """Distribution of required staff per team over the replicates and how often each split wins.

    ``required``: mean, sd and the 2.5 / 50 / 97.5 percentiles per team and for the total; ``splits``:
    each distinct social-worker split (team order) with its count and share of replicates, most
    frequent first; ``enough``: share of replicates whose total requirement is within the plan.
    """
    names = teams(assumptions)
    wide = allocation.set_index(["replicate", "team"])["required"].unstack("team").reindex(columns=names)
    wide["total"] = wide.sum(axis=1)
    required = (
        pd.DataFrame(
            {
                "mean": wide.mean(),
                "sd": wide.std(ddof=1),
                "p2_5": wide.quantile(0.025),
                "median": wide.median(),
                "p97_5": wide.quantile(0.975),
            }
        )
        .rename_axis("team")
        .reset_index()
    )
    counts = split_label(allocation).value_counts()
    splits = (
        counts.rename("replicates")
        .rename_axis("split")
        .reset_index()
        .assign(share=lambda d: d["replicates"] / len(wide))
        .sort_values(["replicates", "split"], ascending=[False, True], ignore_index=True)
    )
    plan = value(assumptions, "plan.social_workers")
    return {
        "required": required,
        "splits": splits,
        "enough": float((wide["total"] <= plan).mean()),
        "replicates": len(wide),
    }


def sizing_keys(assumptions: dict) -> list[str]:
    """Assumptions that change the required social workers and have a range to vary over."""
    return [
        key
        for key, leaf in _leaves(assumptions)
        if key.split(".")[0] in SIZING_SECTIONS
        and leaf["range"][0] < leaf["range"][1]
        and not key.endswith((".caseload_norm", ".other_staff_per_social_worker"))
    ]


def _willing(demand: pd.DataFrame, assumptions: dict) -> np.ndarray:
    """The point demand's ``willing`` per team, in team order."""
    return demand.set_index("team")["willing"].reindex(teams(assumptions)).to_numpy(dtype=float)


def _splits(required: np.ndarray, assumptions: dict) -> list[str]:
    """The social-worker split ("a/b/c/d", team order) of each row of required staff, as :func:`allocate`
    apportions it."""
    seats = apportion_many(
        required,
        value(assumptions, "plan.social_workers"),
        assumptions["plan"]["method"],
        value(assumptions, "plan.minimum_social_workers"),
    )
    return ["/".join(str(int(n)) for n in row) for row in seats]


def tornado(demand: pd.DataFrame, assumptions: dict, keys: list[str] | None = None) -> pd.DataFrame:
    """Required social workers (total) with each assumption at the low and the high end of its range.

    One row per assumption: assumption, base, low, high (its values), required_base / _low / _high
    (total required social workers), split_base / _low / _high (the social-worker split), and per team
    the required staff at low and high (``<team>_low``, ``<team>_high``). Sorted by swing, largest first.
    """
    willing = _willing(demand, assumptions)
    names = teams(assumptions)
    keys = keys or sizing_keys(assumptions)
    ends = [assumptions_range(assumptions, key) for key in keys]
    required = np.array(
        [required_point(willing, assumptions)]
        + [
            required_point(willing, with_value(assumptions, key, end))
            for key, pair in zip(keys, ends)
            for end in pair
        ]
    )
    splits = _splits(required, assumptions)
    rows = []
    for i, (key, (low, high)) in enumerate(zip(keys, ends)):
        at_low, at_high = required[1 + 2 * i], required[2 + 2 * i]
        rows.append(
            {
                "assumption": key,
                "base": value(assumptions, key),
                "low": low,
                "high": high,
                "required_base": required[0].sum(),
                "required_low": at_low.sum(),
                "required_high": at_high.sum(),
                "split_base": splits[0],
                "split_low": splits[1 + 2 * i],
                "split_high": splits[2 + 2 * i],
                **{f"{t}_low": r for t, r in zip(names, at_low)},
                **{f"{t}_high": r for t, r in zip(names, at_high)},
            }
        )
    table = pd.DataFrame(rows)
    table["swing"] = (table["required_high"] - table["required_low"]).abs()
    return table.sort_values(["swing", "assumption"], ascending=[False, True], ignore_index=True)


def assumptions_range(assumptions: dict, key: str) -> tuple[float, float]:
    """(low, high) of one assumption's range."""
    node = assumptions
    for part in key.split("."):
        node = node[part]
    return float(node["range"][0]), float(node["range"][1])


def break_even(
    demand: pd.DataFrame, assumptions: dict, key: str, factor: float = 4.0, tolerance: float = 1e-3
) -> dict[str, Any]:
    """The nearest values of one assumption, below and above its value, at which a social worker moves.

    Steps outward by ×1.1, ×1.25, ×1.5, ×2, ×3 … up to ``factor`` (and the same divided) until the
    social-worker split changes, then bisects to a relative ``tolerance``. Returns the assumption, its
    value and split, and ``lower`` / ``upper`` (NaN when no change within the factor) with the split
    reached there (``lower_split`` / ``upper_split``).
    """
    willing = _willing(demand, assumptions)

    def split_at(x: float) -> str:
        return _splits(required_point(willing, with_value(assumptions, key, x))[None, :], assumptions)[0]

    base_value = value(assumptions, key)
    base_split = split_at(base_value)
    result = {"assumption": key, "value": base_value, "split": base_split}
    steps = [s for s in (1.1, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0) if s <= factor]
    for side, direction in (("lower", -1), ("upper", 1)):
        inside, outside, split = base_value, None, None
        for step in steps:
            candidate = base_value * step**direction
            split = split_at(candidate)
            if split != base_split:
                outside = candidate
                break
            inside = candidate
        if outside is None:
            result[side], result[f"{side}_split"] = np.nan, ""
            continue
        while abs(outside - inside) > tolerance * abs(base_value):
            middle = (inside + outside) / 2
            middle_split = split_at(middle)
            if middle_split == base_split:
                inside = middle
            else:
                outside, split = middle, middle_split
        result[side], result[f"{side}_split"] = outside, split
    return result


def break_evens(
    demand: pd.DataFrame, assumptions: dict, keys: list[str] | None = None, **kwargs
) -> pd.DataFrame:
    """:func:`break_even` for several assumptions, with the relative change needed (nearest side)."""
    table = pd.DataFrame(
        [break_even(demand, assumptions, key, **kwargs) for key in keys or sizing_keys(assumptions)]
    )
    change = pd.concat(
        [(table["lower"] / table["value"] - 1).abs(), (table["upper"] / table["value"] - 1).abs()], axis=1
    ).min(axis=1)
    return table.assign(nearest_change=change).sort_values(
        ["nearest_change", "assumption"], ignore_index=True
    )


def compare_even_split(allocation: pd.DataFrame, assumptions: dict) -> pd.DataFrame:
    """Recommended social workers against an even split (plan ÷ teams) per team, with WISN ratios.

    The even split is kept fractional (10 ÷ 4 = 2.5) so that no tie-break decides who gets the odd
    worker. A final ``total`` row compares the plan with the total requirement.
    """
    plan = value(assumptions, "plan.social_workers")
    table = allocation[["team", "required", "social_workers"]].copy()
    table["even_split"] = plan / len(table)
    table["wisn_ratio"] = table["social_workers"] / table["required"]
    table["wisn_ratio_even"] = table["even_split"] / table["required"]
    total = pd.DataFrame(
        [{"team": "total", "required": table["required"].sum(), "social_workers": plan, "even_split": plan}]
    )
    total["wisn_ratio"] = total["wisn_ratio_even"] = plan / total["required"]
    return pd.concat([table, total], ignore_index=True)


def plan_coverage(required: pd.DataFrame, assumptions: dict) -> float:
    """The share of the coverage targets the plan's social workers can deliver.

    Every activity's workload is proportional to its coverage target, so scaling all targets by k
    gives required = k × Σ service staff × CAF + Σ IAF; this returns the k at which that equals the
    plan (k ≥ 1: the plan meets the targets). Point estimate only (no ``replicate`` column).
    """
    plan = value(assumptions, "plan.social_workers")
    service = (required["service_staff"] * required["caf"]).sum()
    return float((plan - required["iaf"].sum()) / service)


SENTENCES = {
    "en": (
        "Give the {plan:g} social workers as {parts} (the split in {share:.0%} of {replicates} survey "
        "replicates); "
        "the measured workload needs {required:.1f} (95% range {low:.1f}–{high:.1f}), so {plan:g} {verdict}, "
        "and an even split of {even:g} each would leave {worst} with {worst_even:.0%} of the workers "
        "it needs "
        "instead of {worst_rec:.0%}."
    ),
    "zh": (
        "建议{plan:g}名社工按{parts}分配（{replicates}次重复抽样中{share:.0%}得出同一方案）；"
        "按测得的工作量需社工{required:.1f}名（95%区间{low:.1f}–{high:.1f}），{verdict}；"
        "若平均分配（每组{even:g}名），{worst}只得到所需人手的{worst_even:.0%}，本方案为{worst_rec:.0%}。"
    ),
}


def leader_sentence(
    allocation: pd.DataFrame, summary: dict, assumptions: dict, lang: str = "zh", needs: dict | None = None
) -> str:
    """The recommendation in one sentence a leader can repeat, computed from the tables (zh or en).

    Team names are the labels of ``needs`` (default: analysis/needs.yaml).
    """
    if lang not in SENTENCES:
        raise ConfigError(f"language '{lang}' has no sentence", hint="use zh or en")
    plan = value(assumptions, "plan.social_workers")
    needs = config.load_needs() if needs is None else needs
    labels = {t: needs["teams"][t]["label"][lang] for t in teams(assumptions)}
    joiner = "、" if lang == "zh" else ", "
    parts = joiner.join(
        f"{labels[t]}{'' if lang == 'zh' else ' '}{n}"
        for t, n in zip(allocation["team"], allocation["social_workers"])
    )
    split = split_label(allocation).iloc[0]
    splits = summary["splits"].set_index("split")["share"]
    total = summary["required"].set_index("team").loc["total"]
    required = allocation["required"].sum()
    cover = plan / required
    enough = summary["enough"]
    if lang == "zh":
        within = (
            f"所有重复抽样的需求均超过{plan:g}名"
            if enough == 0
            else f"{enough:.0%}的重复抽样需求不超过{plan:g}名"
        )
        verdict = (
            f"{plan:g}名足够（{within}）"
            if required <= plan
            else f"{plan:g}名约可覆盖{cover:.0%}的工作量（{within}）"
        )
    else:
        within = (
            f"every replicate needs more than {plan:g}"
            if enough == 0
            else f"{enough:.0%} of replicates need {plan:g} or fewer"
        )
        verdict = (
            f"is enough ({within})" if required <= plan else f"covers about {cover:.0%} of it ({within})"
        )
    even = compare_even_split(allocation, assumptions).iloc[:-1].set_index("team")
    worst = even["wisn_ratio_even"].idxmin()
    return SENTENCES[lang].format(
        plan=plan,
        parts=parts,
        share=float(splits.get(split, 0.0)),
        replicates=summary["replicates"],
        required=required,
        low=total["p2_5"],
        high=total["p97_5"],
        verdict=verdict,
        even=plan / len(even),
        worst=labels[worst],
        worst_even=even.loc[worst, "wisn_ratio_even"],
        worst_rec=even.loc[worst, "wisn_ratio"],
    )
