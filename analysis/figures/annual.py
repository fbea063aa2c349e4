"""The annual evaluation's figure: two survey waves side by side with the change marked."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from analysis.figures.style import NEUTRAL, SLIDE_INCHES, Labels, Note, new_figure, styled


@styled
def annual_change(
    table: pd.DataFrame,
    labels: Labels,
    note: Note,
    english: Labels | None = None,
    extra_note: str | None = None,
    size: tuple = SLIDE_INCHES,
) -> Figure:
    """Two survey waves side by side, with the change marked, one panel per measure (analysis/evaluate.py).

    Per team, the earlier wave's bar (pale) above the later one's (full team colour), each with its 95%
    CI; at the right the change in percentage points: ▲ or ▼ in bold when its 95% interval excludes
    zero, otherwise grey "no clear change". Labels in ``labels``' language with ``english`` alongside.
    Suppressed estimates are not drawn ("not shown").
    """
    rows = table[table["group"] == "all"]
    years = sorted(rows.loc[rows["wave"] != "change", "wave"].astype(str).unique())

    def both(key: str, sep: str = " ", **values) -> str:
        text = labels(key, **values)
        return text if english is None else f"{text}{sep}{english(key, **values)}"

    def team_name(team: str) -> str:
        if team not in labels.teams:
            return both("evaluation.centre", "\n")
        return labels.team(team) if english is None else f"{labels.team(team)}\n{english.team(team)}"

    fig = new_figure(
        both("figures.annual_change.title", first=years[0], second=years[-1]),
        note,
        labels,
        "\n".join(p for p in (extra_note, both("figures.annual_change.key", "\n")) if p),
        size,
    )
    fig.get_layout_engine().set(rect=(0.01, 0.23, 0.98, 0.67), wspace=0.08, hspace=0.06)
    measures = [m for m in ("reach", "unmet", "need_any", "aware") if m in set(rows["measure"])]
    axes = fig.subplots(2, 2, squeeze=False).ravel()
    most = max(rows.groupby("measure")["team"].nunique())
    for ax, measure in zip(axes, measures):
        part = rows[rows["measure"] == measure]
        teams = list(dict.fromkeys(part["team"]))
        wide = {
            c: part.pivot_table(index="team", columns="wave", values=c, aggfunc="first").reindex(teams) * 100
            for c in ("estimate", "ci_low", "ci_high")
        }
        y = np.arange(most)[::-1][: len(teams)].astype(float)
        top = (
            np.nanmax(wide["ci_high"][years].to_numpy(float))
            if wide["ci_high"][years].notna().any().any()
            else 1.0
        )
        colours = np.asarray([labels.colour(t) if t in labels.teams else NEUTRAL for t in teams])
        for year, shift, alpha in zip(years, (0.2, -0.2), (0.35, 1.0)):
            value, low, high = (wide[c][year].to_numpy(float) for c in ("estimate", "ci_low", "ci_high"))
            shown = ~np.isnan(value)
            ax.barh(y[shown] + shift, value[shown], height=0.38, color=colours[shown], alpha=alpha)
            ax.errorbar(
                value[shown],
                y[shown] + shift,
                xerr=[(value - low)[shown], (high - value)[shown]],
                fmt="none",
                ecolor="#262626",
                elinewidth=1.2,
                capsize=3,
            )
            for yi, v, h, ok in zip(y + shift, value, high, shown):
                ax.text(
                    (h if ok else 0) + top * 0.015,
                    yi,
                    f"{v:.0f}%" if ok else labels("suppressed_cell"),
                    va="center",
                    fontsize=10,
                    color="#262626" if ok else NEUTRAL,
                )
        change = part[part["wave"] == "change"].set_index("team").reindex(teams)
        ax.text(
            1.06,
            -0.03,
            both("figures.annual_change.change_header", "\n"),
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=11,
            color=NEUTRAL,
        )
        for yi, (_, c) in zip(y, change.iterrows()):
            significant = c["ci_low"] > 0 or c["ci_high"] < 0
            interval = f"[{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}]"
            if pd.isna(c["estimate"]):
                lines = (labels("suppressed_cell"), "")
            elif significant:
                lines = (f"{'▲' if c['estimate'] > 0 else '▼'} {100 * c['estimate']:+.1f}", interval)
            else:
                lines = (f"{100 * c['estimate']:+.1f}  {interval}", both("figures.annual_change.unclear"))
            ax.text(
                1.06,
                yi + 0.02,
                lines[0],
                transform=ax.get_yaxis_transform(),
                va="bottom",
                ha="left",
                fontsize=15 if significant else 11,
                color="#1a1a1a" if significant else NEUTRAL,
                fontweight="bold" if significant else "normal",
            )
            ax.text(
                1.06,
                yi - 0.02,
                lines[1],
                transform=ax.get_yaxis_transform(),
                va="top",
                ha="left",
                fontsize=10,
                color=NEUTRAL,
            )
        ax.set_yticks(y, [team_name(t) for t in teams], fontsize=11)
        ax.set_ylim(-0.6, most - 0.4)
        ax.tick_params(axis="y", length=0)
        ax.set_xlim(0, top * 1.18)
        ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:.0f}%"))
        ax.tick_params(axis="x", labelsize=11)
        ax.xaxis.grid(True, color="#E6E6E6", linewidth=1)
        ax.set_axisbelow(True)
        ax.set_title(both(f"evaluation.{measure}"), loc="left", fontsize=16)
    for ax in axes[len(measures) :]:
        ax.set_visible(False)
    fewest = min(
        range(len(measures)), key=lambda k: rows.loc[rows["measure"] == measures[k], "team"].nunique()
    )
    axes[fewest].legend(
        [Patch(color=NEUTRAL, alpha=0.35), Patch(color=NEUTRAL)],
        years,
        loc="lower right",
        ncols=2,
        fontsize=13,
    )
    return fig
