"""Staffing figures: the recommended split beside an even one (with the replicate range) and the tornado of
the planning assumptions, from the staffing stage's tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

from analysis.errors import AnalysisError
from analysis.figures.style import LIGHT, NEUTRAL, SLIDE_INCHES, Labels, Note, new_figure, styled

STAFFING_COLUMNS = {
    "allocation": {"team", "required", "social_workers", "other_staff"},
    "replicate_allocations": {"replicate", "team", "required", "social_workers", "other_staff"},
    "sensitivity": {"assumption", "base", "low", "high", "required_base", "required_low", "required_high"},
}


def require_columns(frame: pd.DataFrame, name: str) -> None:
    """AnalysisError naming the staffing table and its missing columns (analysis/staffing/ writes them)."""
    missing = STAFFING_COLUMNS[name] - set(frame.columns)
    if missing:
        raise AnalysisError(
            f"staffing table lacks columns {sorted(missing)}",
            file=f"staffing/{name}.csv",
            hint="rerun notebook 04_team_sizing",
        )


def assumption_label(key: str, labels: Labels) -> str:
    """Readable name of a dotted assumption key.

    E.g. teams.youth.casework.coverage -> 青少年 · 个案 · 覆盖率.
    """
    parts = [p for p in key.split(".") if p != "teams"]
    names = [labels.team(p) if p in labels.teams else labels.get(f"assumption_parts.{p}", p) for p in parts]
    return ("·" if labels.lang == "zh" else " · ").join(names)


@styled
def staffing_vs_even(
    allocation: pd.DataFrame,
    replicates: pd.DataFrame,
    labels: Labels,
    note: Note,
    categories: tuple = ("social_workers", "other_staff"),
    size: tuple = SLIDE_INCHES,
) -> Figure:
    """Recommended staff per team (bars) against an even split (dashed line), one panel per staff category.

    Whiskers span the 2.5th–97.5th percentile of the allocation over the bootstrap replicates (the whole
    chain redone on each replicate weight set), so a leader sees how firm each number is.
    """
    require_columns(allocation, "allocation")
    require_columns(replicates, "replicate_allocations")
    order = [t for t in labels.teams if t in set(allocation["team"])]
    chosen = allocation.set_index("team").reindex(order)
    fig = new_figure(labels("figures.staffing.title"), note, labels, size=size)
    axes = fig.subplots(1, len(categories), squeeze=False)[0]
    for ax, category in zip(axes, categories):
        reps = replicates.groupby("team")[category]
        low = reps.quantile(0.025).reindex(order).to_numpy(float)
        high = reps.quantile(0.975).reindex(order).to_numpy(float)
        x = np.arange(len(order))
        est = chosen[category].to_numpy(float)
        even = est.sum() / len(order)
        ax.bar(
            x,
            est,
            color=[labels.colour(t) for t in order],
            width=0.62,
            label=labels("figures.staffing.recommended"),
        )
        ax.errorbar(
            x,
            est,
            yerr=[np.clip(est - low, 0, None), np.clip(high - est, 0, None)],
            fmt="none",
            ecolor="#262626",
            elinewidth=1.8,
            capsize=7,
            capthick=1.8,
            label=labels("figures.staffing.interval"),
        )
        ax.axhline(even, color=NEUTRAL, linestyle="--", linewidth=2, label=labels("figures.staffing.even"))
        ax.set_xticks(x, [f"{labels.team(t)}\n{v:g}" for t, v in zip(order, est)])
        ax.tick_params(axis="x", length=0, labelsize=18 if len(categories) == 1 else 15)
        name = labels(f"staff_category.{category}")
        ax.set_title(
            f"{name}（{est.sum():g}）" if labels.lang == "zh" else f"{name} ({est.sum():g})", loc="left"
        )
        ax.set_ylim(0, max(np.nanmax(high), est.max(), even) * 1.4)  # headroom for the legend
        ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.yaxis.grid(True, color="#E6E6E6", linewidth=1)
        ax.set_axisbelow(True)
        ax.spines["left"].set_visible(True)
    axes[0].set_ylabel(labels("figures.staffing.ylabel"))
    axes[-1].legend(
        loc="upper right", ncols=3 if len(axes) == 1 else 1, fontsize=14, handlelength=1.5, columnspacing=1.2
    )
    return fig


@styled
def sensitivity_tornado(
    sensitivity: pd.DataFrame, labels: Labels, note: Note, top: int = 10, size: tuple = SLIDE_INCHES
) -> Figure:
    """Tornado of required social workers when each assumption moves to its low and high value.

    Bars run from the base to the total required staff under the low (light) and high (dark) end of the
    assumption's range (analysis/assumptions.yaml); the assumptions that move the answer most are on top.
    """
    require_columns(sensitivity, "sensitivity")
    rows = sensitivity.assign(swing=(sensitivity["required_high"] - sensitivity["required_low"]).abs())
    rows = rows.sort_values(["swing", "assumption"], ascending=[False, True]).head(top)
    base = float(rows["required_base"].iloc[0])
    fig = new_figure(labels("figures.sensitivity.title"), note, labels, size=size)
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    ax.barh(
        y,
        rows["required_low"] - base,
        left=base,
        color=LIGHT,
        height=0.6,
        label=labels("figures.sensitivity.low"),
    )
    ax.barh(
        y,
        rows["required_high"] - base,
        left=base,
        color=NEUTRAL,
        height=0.6,
        label=labels("figures.sensitivity.high"),
    )
    ax.axvline(base, color="#1a1a1a", linewidth=2)
    names = [
        f"{assumption_label(a, labels)}  {lo:.3g}–{hi:.3g}"
        for a, lo, hi in zip(rows["assumption"], rows["low"], rows["high"])
    ]
    ax.set_yticks(y, names, fontsize=14)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(labels("figures.sensitivity.xlabel"))
    ax.xaxis.grid(True, color="#E6E6E6", linewidth=1)
    ax.set_axisbelow(True)
    ax.text(
        base,
        y.max() + 0.75,
        f" {labels('figures.sensitivity.base')} {base:.1f}",
        ha="left",
        va="bottom",
        fontsize=15,
    )
    ax.set_ylim(-0.6, y.max() + 1.4)
    ax.legend(loc="lower right")
    return fig
