"""Demand figures: the share in need per team, top services, unmet need, the 村居 heat map and the small-area
shrinkage, all drawn from the tidy demand results table (docs/contracts.md)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from analysis.errors import AnalysisError
from analysis.figures.style import NEUTRAL, SLIDE_INCHES, SUPPRESSED, Labels, Note, new_figure, styled


def _rows(results: pd.DataFrame, *, analysis_type: str, variable: str, group: str = "all") -> pd.DataFrame:
    """Rows of the tidy results table for one estimate per team (and per group value).

    ``variable`` may name the team as ``{team}``: "in_need_{team}" selects in_need_elderly for the
    elderly team, in_need_youth for youth, and so on (analysis/demand.py's naming).
    """
    missing = {
        "analysis_type",
        "team",
        "variable",
        "value",
        "group",
        "group_value",
        "estimate",
        "ci_low",
        "ci_high",
        "n",
        "suppressed",
        "unit",
    } - set(results.columns)
    if missing:
        raise AnalysisError(
            f"results table lacks columns {sorted(missing)}",
            file="demand/results.csv",
            hint="see docs/contracts.md, tidy results table",
        )
    wanted = results["team"].map({t: variable.format(team=t) for t in results["team"].unique()})
    rows = results[
        (results["analysis_type"] == analysis_type)
        & (results["variable"] == wanted)
        & (results["group"] == group)
    ]
    if rows.empty:
        available = sorted(results.loc[results["analysis_type"] == analysis_type, "variable"].unique())
        raise AnalysisError(
            f"no '{analysis_type}' rows for variable '{variable}' by '{group}'",
            file="demand/results.csv",
            column="variable",
            hint=f"variables with that analysis_type: {available[:12]}",
        )
    return rows


def _suppressed(rows: pd.DataFrame, threshold: int) -> pd.Series:
    """Cells not to show: flagged by disclosure control, under the respondent threshold, or missing."""
    flag = rows["suppressed"].astype(str).str.lower().isin(["true", "1", "yes"])
    small = (pd.to_numeric(rows["n"], errors="coerce") < threshold).fillna(True).astype(bool)
    return flag | small | rows["estimate"].isna()


def _thousands(value: float) -> str:
    return f"{value:,.0f}"


def _hbar(
    ax,
    names: list[str],
    rows: pd.DataFrame,
    colours: list[str],
    fmt,
    hidden: np.ndarray,
    hidden_text: str,
    scale: float = 1.0,
) -> None:
    """Horizontal bars with 95% CI whiskers and the value printed past the whisker, in row order from the top.

    Rows in ``hidden`` (suppressed by disclosure control) get no bar and no number, only ``hidden_text``.
    """
    y = np.arange(len(rows))[::-1]
    est = np.where(hidden, np.nan, rows["estimate"].to_numpy(float) * scale)
    low = np.where(hidden, np.nan, rows["ci_low"].to_numpy(float) * scale)
    high = np.where(hidden, np.nan, rows["ci_high"].to_numpy(float) * scale)
    top = np.nanmax(high) if (~hidden).any() else 1.0
    ax.barh(y[~hidden], est[~hidden], color=np.asarray(colours)[~hidden], height=0.62)
    ax.errorbar(
        est[~hidden],
        y[~hidden],
        xerr=[(est - low)[~hidden], (high - est)[~hidden]],
        fmt="none",
        ecolor="#262626",
        elinewidth=1.8,
        capsize=6,
        capthick=1.8,
    )
    pad = top * 0.015
    for yi, hi, value, gone in zip(y, high, est, hidden):
        ax.text(
            pad if gone else hi + pad,
            yi,
            hidden_text if gone else fmt(value),
            va="center",
            ha="left",
            fontsize=15 if gone else 17,
            color=NEUTRAL if gone else "#262626",
        )
    ax.set_yticks(y, names)
    ax.set_xlim(0, top * 1.16)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=6))
    ax.xaxis.grid(True, color="#E6E6E6", linewidth=1)
    ax.set_axisbelow(True)
    ax.tick_params(axis="y", length=0, pad=10)


@styled
def demand_by_team(
    results: pd.DataFrame,
    labels: Labels,
    note: Note,
    variable: str = "in_need_{team}",
    threshold: int = 10,
    size: tuple = SLIDE_INCHES,
) -> Figure:
    """Estimated residents (households for family) in need of each team's services, with 95% CIs."""
    rows = _rows(results, analysis_type="total", variable=variable).sort_values("estimate", ascending=False)
    names = [
        f"{labels.team(t)}（{labels(f'units.{u}')}）"
        if labels.lang == "zh"
        else f"{labels.team(t)} ({labels(f'units.{u}')})"
        for t, u in zip(rows["team"], rows["unit"])
    ]
    fig = new_figure(labels("figures.demand_by_team.title"), note, labels, labels("footnote.ci"), size)
    ax = fig.add_subplot()
    _hbar(
        ax,
        names,
        rows,
        [labels.colour(t) for t in rows["team"]],
        _thousands,
        _suppressed(rows, threshold).to_numpy(),
        labels("suppressed", threshold=threshold),
    )
    ax.set_xlabel(labels("figures.demand_by_team.xlabel"))
    ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    return fig


@styled
def top_services(
    results: pd.DataFrame,
    labels: Labels,
    note: Note,
    k: int = 10,
    variable: str = "need_{team}",
    threshold: int = 10,
    size: tuple = SLIDE_INCHES,
) -> Figure:
    """The ``k`` service lines with the most households in need (``need_<team>`` totals), by team colour.

    Suppressed estimates cannot be ranked and are left out.
    """
    rows = _rows(results, analysis_type="total", variable=variable)
    rows = (
        rows[(rows["value"].astype(str) != "other") & ~_suppressed(rows, threshold)]
        .sort_values(["estimate", "team", "value"], ascending=[False, True, True])
        .head(k)
    )
    names = [labels.service(t, s) for t, s in zip(rows["team"], rows["value"].astype(str))]
    fig = new_figure(
        labels("figures.top_services.title", k=len(rows)), note, labels, labels("footnote.ci"), size
    )
    ax = fig.add_subplot()
    _hbar(
        ax, names, rows, [labels.colour(t) for t in rows["team"]], _thousands, np.zeros(len(rows), bool), ""
    )
    ax.set_xlabel(labels("figures.top_services.xlabel"))
    ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    ax.tick_params(axis="y", labelsize=16)
    present = [t for t in labels.teams if t in set(rows["team"])]
    ax.legend(
        [Patch(color=labels.colour(t)) for t in present],
        [labels.team(t) for t in present],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=len(present),
    )
    return fig


@styled
def unmet_need(
    results: pd.DataFrame,
    labels: Labels,
    note: Note,
    variable: str = "unmet_{team}",
    threshold: int = 10,
    size: tuple = SLIDE_INCHES,
) -> Figure:
    """Per team, the share of those in need who receive none of the team's services, with 95% CIs."""
    rows = _rows(results, analysis_type="prop", variable=variable).sort_values("estimate", ascending=False)
    fig = new_figure(labels("figures.unmet_need.title"), note, labels, labels("footnote.ci"), size)
    ax = fig.add_subplot()
    _hbar(
        ax,
        [labels.team(t) for t in rows["team"]],
        rows,
        [labels.colour(t) for t in rows["team"]],
        lambda v: f"{v:.0f}%",
        _suppressed(rows, threshold).to_numpy(),
        labels("suppressed", threshold=threshold),
        scale=100,
    )
    ax.set_xlim(0, 100)
    ax.set_xlabel(labels("figures.unmet_need.xlabel"))
    ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:.0f}%"))
    return fig


def _denominator(universe: str | None, labels: Labels) -> str:
    """The denominator of a team's share in words ("% of residents aged 60+"), from the results' ``universe``
    ("persons aged 60+", "persons aged 6-24", "persons", "households": analysis.demand.universe_text)."""
    text = str(universe or "")
    if m := re.fullmatch(r"persons aged (\d+)\+", text):
        return labels("figures.demand_by_cunju.denominator_from", low=m[1])
    if m := re.fullmatch(r"persons aged (\d+)-(\d+)", text):
        return labels("figures.demand_by_cunju.denominator_between", low=m[1], high=m[2])
    kind = "households" if text == "households" else "persons"
    return labels(f"figures.demand_by_cunju.denominator_{kind}")


@styled
def demand_by_cunju(
    results: pd.DataFrame,
    labels: Labels,
    note: Note,
    variable: str = "in_need_{team}",
    threshold: int = 10,
    size: tuple = SLIDE_INCHES,
    imprecise_width: float = 0.30,
) -> Figure:
    """Heat map of the share in need per 村居 (rows) and team (columns, each naming its denominator).

    Where the results carry model-based 村居 rows (``method`` "fh", :mod:`analysis.sae`) the map shows
    those; they are not tabulations of one 村居's respondents, so only the direct rows are subject to the
    respondent threshold. Cells suppressed by disclosure control (primary or secondary), or direct cells
    with fewer than ``threshold`` respondents (10 for leadership tables, docs/sources.md §6), are drawn
    hatched grey and labelled "not shown", never with a value. Each shown cell gives its 95% interval in
    small type beside the value; cells whose interval is wider than ``imprecise_width`` (a proportion:
    0.30 = 30 percentage points; the leadership brief's rule, not a published standard) get a small "±"
    marker, explained in the key under the map, below the hatch key.
    """
    from analysis.sae import preferred

    rows = preferred(_rows(results, analysis_type="prop", variable=variable, group="cunju"))
    model = rows["method"].eq("fh") if "method" in rows.columns else pd.Series(False, index=rows.index)
    hidden = _suppressed(rows, threshold).where(~model, rows["estimate"].isna())
    rows = rows.assign(hidden=hidden, group_value=rows["group_value"].astype(str))
    teams = [t for t in labels.teams if t in set(rows["team"])]
    codes = sorted(rows["group_value"].unique())
    share = rows.pivot(index="group_value", columns="team", values="estimate").reindex(
        index=codes, columns=teams
    )
    hidden = rows.pivot(index="group_value", columns="team", values="hidden").reindex(
        index=codes, columns=teams
    )
    hidden = hidden.fillna(True).astype(bool)
    width = (rows["ci_high"].astype(float) - rows["ci_low"].astype(float)).rename("width")
    width = rows.assign(width=width).pivot(index="group_value", columns="team", values="width")
    imprecise = (width.reindex(index=codes, columns=teams) > imprecise_width).to_numpy() & ~hidden.to_numpy()
    values = np.ma.masked_array(share.to_numpy(float) * 100, mask=hidden.to_numpy())
    low, high = (
        rows.pivot(index="group_value", columns="team", values=c)
        .reindex(index=codes, columns=teams)
        .to_numpy(float)
        * 100
        for c in ("ci_low", "ci_high")
    )
    extra = labels("suppressed", threshold=threshold)
    title, footnote = labels("figures.demand_by_cunju.title"), extra
    if model.any():
        title = labels("figures.demand_by_cunju.title_model")
        sep = "；" if labels.lang == "zh" else "; "
        footnote = sep.join([extra, labels("figures.demand_by_cunju.model_note")])
    fig = new_figure(title, note, labels, footnote, size)
    ax = fig.add_subplot()
    vmax = max(float(np.ma.max(values)) if values.count() else 1.0, 1.0)
    image = ax.imshow(values, cmap="cividis", vmin=0, vmax=vmax, aspect="auto")
    rr, cc = np.nonzero(hidden.to_numpy())
    for r, c in zip(rr, cc):
        ax.add_patch(
            Rectangle(
                (c - 0.5, r - 0.5), 1, 1, facecolor=SUPPRESSED, edgecolor="#9E9E9E", hatch="///", linewidth=0
            )
        )
        ax.text(c, r, labels("suppressed_cell"), ha="center", va="center", fontsize=11, color="#404040")
    rr, cc = np.nonzero(~hidden.to_numpy())
    for r, c in zip(rr, cc):
        v = values[r, c]
        ink = "white" if v < 0.55 * vmax else "#1a1a1a"
        ax.text(c, r, f"{v:.0f}%", ha="center", va="center", fontsize=11, color=ink)
        ax.annotate(
            f"{low[r, c]:.0f}–{high[r, c]:.0f}",
            (c, r),
            xytext=(16, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            fontsize=8,
            color=ink,
        )
    rr, cc = np.nonzero(imprecise)
    for r, c in zip(rr, cc):
        ax.annotate(
            "±",
            (c, r),
            xytext=(-16, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            fontsize=10,
            color="white" if values[r, c] < 0.55 * vmax else "#1a1a1a",
        )
    universe = rows.groupby("team")["universe"].first() if "universe" in rows.columns else {}
    ax.set_xticks(
        np.arange(len(teams)),
        [f"{labels.team(t)}\n{_denominator(universe.get(t), labels)}" for t in teams],
        fontsize=14,
    )
    ax.xaxis.tick_top()
    ax.tick_params(axis="x", length=0)
    for tick, team in zip(ax.get_xticklabels(), teams):
        tick.set_color(labels.colour(team))
    ax.set_yticks(np.arange(len(codes)), [labels.cunju(c) for c in codes], fontsize=11)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(image, ax=ax, fraction=0.03, aspect=30, pad=0.01)
    bar.set_label(labels("figures.demand_by_cunju.colorbar"), fontsize=15)
    bar.ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:.0f}%"))
    bar.ax.tick_params(labelsize=14)
    bar.outline.set_visible(False)
    marker = Line2D([], [], linestyle="none", marker="$±$", markersize=9, markeredgewidth=0, color="#1a1a1a")
    interval = Line2D(
        [], [], linestyle="none", marker="$a–b$", markersize=16, markeredgewidth=0, color="#1a1a1a"
    )
    ax.legend(
        [Patch(facecolor=SUPPRESSED, edgecolor="#9E9E9E", hatch="///"), interval, marker],
        [
            extra,
            labels("figures.demand_by_cunju.interval"),
            labels("figures.demand_by_cunju.imprecise", width=round(imprecise_width * 100)),
        ],
        loc="upper left",
        bbox_to_anchor=(0.0, 0.0),
        fontsize=12,
        borderaxespad=0.3,
        frameon=False,
        handlelength=1.6,
        labelspacing=0.3,
    )
    return fig


@styled
def cunju_shrinkage(areas: pd.DataFrame, labels: Labels, note: Note, size: tuple = SLIDE_INCHES) -> Figure:
    """Direct and model-based 村居 estimates side by side, one panel per team: each 村居 a line from its
    direct estimate (left, dot area ∝ respondents) to its published estimate (right), so the pull of
    small samples towards the regression on the frame shows. ``areas``: :class:`analysis.sae.CunjuFit`
    ``areas`` (team, cunju, n, direct, estimate, method)."""
    teams = [t for t in labels.teams if t in set(areas["team"])]
    fig = new_figure(
        labels("figures.cunju_shrinkage.title"), note, labels, labels("figures.cunju_shrinkage.key"), size
    )
    # panels at fixed positions (figure fractions): constrained layout of several panels moved them by
    # ~1e-9 depending on what was drawn before, which changed the SVG's clip-path ids between runs
    fig.set_layout_engine("none")
    left, right, gap, bottom, top = 0.07, 0.99, 0.05, 0.2, 0.84
    width = (right - left - gap * (len(teams) - 1)) / len(teams)
    axes = [fig.add_axes((left + i * (width + gap), bottom, width, top - bottom)) for i in range(len(teams))]
    for ax, team in zip(axes, teams):
        rows = areas[areas["team"] == team]
        both = rows[["direct", "estimate"]].to_numpy(float) * 100
        for direct, model in both:
            ax.plot([0, 1], [direct, model], color=NEUTRAL, linewidth=0.8, alpha=0.6)
        ax.scatter(
            np.zeros(len(rows)),
            both[:, 0],
            s=4 + 2 * rows["n"].to_numpy(float),
            color=NEUTRAL,
            alpha=0.7,
            linewidths=0,
        )
        ax.scatter(np.ones(len(rows)), both[:, 1], s=28, color=labels.colour(team), zorder=3)
        ax.set_xticks(
            [0, 1],
            [labels("figures.cunju_shrinkage.direct"), labels("figures.cunju_shrinkage.model")],
            fontsize=13,
        )
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(labels.team(team), color=labels.colour(team), fontsize=16)
        ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:.0f}%"))
    axes[0].set_ylabel(labels("figures.cunju_shrinkage.ylabel"), fontsize=14)
    return fig
