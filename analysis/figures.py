"""Figures for planners and leaders: one house style, a CJK font, bilingual labels, footnotes.

Owns: how every figure looks (font, sizes, the team colours of needs.yaml, footnote, simulated mark), the
figure functions themselves, the labels object (labels.yaml + needs.yaml + the instrument's choices) and
deterministic PNG/SVG files. Which stage draws which figure is :mod:`analysis.pipeline`'s business.

Every figure is drawn from the stage outputs named in docs/contracts.md (the tidy demand results table,
the staffing tables, the cleaning logs), never from typed-in numbers. Labels come from
``analysis/labels.yaml`` and from the instrument's question and choice labels; Simplified Chinese by
default, English with ``lang="en"``. Every figure carries a footnote (source, unweighted N, weighting
target, fieldwork dates) and, for simulated data, a visible "模拟数据 / simulated data" mark.

Files are written deterministically: PNG without the Software chunk, SVG with a fixed hash salt and no
date, so two runs give the same bytes.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn
from matplotlib import font_manager, ticker
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from analysis import config
from analysis.errors import AnalysisError, ConfigError

LABELS_PATH = config.LABELS_PATH
NEUTRAL = "#595959"
LIGHT = "#BFBFBF"
SUPPRESSED = "#E0E0E0"
SIMULATED_RED = "#C00000"
CJK_FAMILY = "Noto Sans CJK SC"
SYSTEM_CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei",
                       "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN")
SLIDE_INCHES = (13.33, 7.5)  # 16:9 slide
DPI = 300
# Fixed metadata: no software version or creation date in the files, so reruns give identical bytes.
PNG_METADATA = {"Software": None}
SVG_METADATA = {"Date": None, "Creator": None}
FORMATS = ("png", "svg")


def register_cjk_font() -> str:
    """Make a Simplified Chinese font available to matplotlib and return its family name.

    Uses the Noto Sans CJK collection shipped by the PyPI package ``noto-cjk-sans-otc`` (a dependency, so a
    fresh machine without system fonts still renders Chinese); the collection's default face is Japanese,
    so the "Noto Sans CJK SC" face is named explicitly. Falls back to a system CJK font when the package
    is missing.
    """
    try:
        import noto_cjk_sans_otc
    except ImportError:
        noto_cjk_sans_otc = None
    if noto_cjk_sans_otc is not None:
        path = str(noto_cjk_sans_otc.FONT_PATH)
        if not any(entry.fname == path for entry in font_manager.fontManager.ttflist):
            font_manager.fontManager.addfont(path)
        return CJK_FAMILY
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    for family in SYSTEM_CJK_FAMILIES:
        if family in installed:
            return family
    raise ConfigError("no Chinese (CJK) font found for figures",
                      hint="pip install noto-cjk-sans-otc (a project dependency) or install fonts-noto-cjk")


def style_rc(family: str) -> dict:
    """The house style as matplotlib rcParams: large type for slides, no chart junk, fixed SVG salt."""
    return {
        "font.family": [family, "DejaVu Sans"],
        "font.size": 18,
        "axes.titlesize": 22,
        "axes.labelsize": 18,
        "xtick.labelsize": 16,
        "ytick.labelsize": 18,
        "legend.fontsize": 16,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.spines.left": False,
        "axes.edgecolor": NEUTRAL,
        "axes.labelcolor": "#262626",
        "xtick.color": "#262626",
        "ytick.color": "#262626",
        "ytick.left": False,
        "axes.grid": False,
        "axes.unicode_minus": False,
        "legend.frameon": False,
        "figure.facecolor": "white",
        "savefig.facecolor": "white",
        "svg.fonttype": "path",
        "svg.hashsalt": "leliu-needs",
        "path.simplify": False,
    }


@contextlib.contextmanager
def house_style():
    """Context in which figures are drawn and saved with the house style and the CJK font."""
    with matplotlib.rc_context(style_rc(register_cjk_font())):
        yield


def styled(make):
    """Run a figure-making function inside :func:`house_style` (text takes its font when created)."""
    @functools.wraps(make)
    def wrapper(*args, **kwargs):
        with house_style():
            return make(*args, **kwargs)
    return wrapper


@dataclass(frozen=True)
class Labels:
    """Display labels in one language: the labels file, the teams of needs.yaml (names and colours, in
    their order) and the instrument's choice labels."""

    lang: str
    text: dict
    choices: dict = field(default_factory=dict)
    team_styles: dict = field(default_factory=dict)  # team -> {"label": {zh, en}, "colour": "#rrggbb"}

    def __call__(self, key: str, **values) -> str:
        """The label at dotted ``key`` (e.g. "figures.top_services.title"), formatted with ``values``."""
        node = self.text
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"no label '{key}'", file=str(LABELS_PATH), hint="add it in both zh and en")
            node = node[part]
        if not isinstance(node, dict) or self.lang not in node:
            raise ConfigError(f"label '{key}' has no '{self.lang}' text", file=str(LABELS_PATH))
        return node[self.lang].format(**values)

    def get(self, key: str, default: str) -> str:
        """The label at ``key`` or ``default`` when the labels file has none (e.g. an unknown reason)."""
        try:
            return self(key)
        except ConfigError:
            return default

    @property
    def teams(self) -> list[str]:
        """The teams in needs.yaml's order (the order of every figure)."""
        return list(self.team_styles)

    def _style(self, team: str) -> dict:
        if team not in self.team_styles:
            raise ConfigError(f"team '{team}' is in the results but not in needs.yaml", file=str(config.NEEDS_PATH),
                              column="teams", hint="rerun the demand stage after changing needs.yaml")
        return self.team_styles[team]

    def team(self, team: str) -> str:
        """The team's name (needs.yaml ``label``)."""
        return self._style(team)["label"][self.lang]

    def colour(self, team: str) -> str:
        """The team's colour (needs.yaml ``colour``), the same in every figure and in the brief."""
        return self._style(team)["colour"]

    def choice(self, list_name: str, name: str) -> str:
        """The instrument's label of choice ``name`` in list ``list_name``; the code itself if absent."""
        return self.choices.get((list_name, name), name)

    def service(self, team: str, service: str) -> str:
        return self.choice(f"{team}_services", service)

    def cunju(self, code: str) -> str:
        return self.choice("cunju", code)


def load_labels(lang: str = "zh", form=None, path: str | Path = LABELS_PATH, needs: dict | None = None) -> Labels:
    """Labels in ``lang`` ("zh" or "en") from the labels file, the teams of ``needs`` (default
    analysis/needs.yaml) and, when given, an instrument ``Form``.

    ``form`` is an ``analysis.instrument.Form`` (or anything with a ``choices`` DataFrame holding
    ``list_name, name, label_zh, label_en``); without it choice labels fall back to their codes.
    """
    if lang not in ("zh", "en"):
        raise ConfigError(f"unknown label language '{lang}'", hint="use zh or en")
    text = config.load_label_texts(path)
    needs = config.load_needs() if needs is None else needs
    styles = {team: {"label": spec["label"], "colour": spec["colour"]} for team, spec in needs["teams"].items()}
    choices = {}
    if form is not None:
        table = form.choices
        labels = table[f"label_{lang}"].where(table[f"label_{lang}"].astype(str).str.len() > 0, table["name"])
        choices = dict(zip(zip(table["list_name"], table["name"]), labels))
    return Labels(lang=lang, text=text, choices=choices, team_styles=styles)


@dataclass(frozen=True)
class Note:
    """What every figure's footnote says, computed from the clean data and its provenance."""

    households: int
    persons: int
    date: str
    simulated: bool
    source: str | None = None
    weighted_to: str | None = None


def data_note(households: pd.DataFrame, persons: pd.DataFrame, provenance: dict) -> Note:
    """The footnote facts: unweighted N and fieldwork dates from the clean tables, simulation flag.

    Dates are the first and last interview dates (``today``, else ``start``) in the clean households,
    so the footnote is reproducible and does not depend on when the figures are drawn.
    """
    dates = pd.Series(dtype="datetime64[ns]")
    for column in ("today", "start"):
        if column in households:
            dates = pd.to_datetime(households[column], errors="coerce", utc=True).dropna()
            if len(dates):
                break
    if len(dates):
        first, last = dates.min().strftime("%Y-%m-%d"), dates.max().strftime("%Y-%m-%d")
        date = first if first == last else f"{first} – {last}"
    else:
        date = str(provenance.get("fieldwork", provenance.get("date", "?")))
    return Note(households=len(households), persons=len(persons), date=date,
                simulated=bool(provenance.get("simulated", False)))


def footnote_text(note: Note, labels: Labels, extra: str | None = None) -> str:
    """The footnote line(s) for a figure."""
    sep = "；" if labels.lang == "zh" else "; "
    lines = [
        [labels("footnote.source", source=note.source or labels("footnote.default_source")),
         labels("footnote.n", households=note.households, persons=note.persons)],
        [labels("footnote.weighted", weighted_to=note.weighted_to or labels("footnote.default_weighted_to")),
         labels("footnote.date", date=note.date)],
        [p for p in (extra, labels("footnote.simulated") if note.simulated else None) if p],
    ]
    return "\n".join(sep.join(line) for line in lines if line)


def new_figure(title: str, note: Note, labels: Labels, extra_note: str | None = None,
               size: tuple[float, float] = SLIDE_INCHES) -> Figure:
    """A figure with its title, footnote and (for simulated data) the simulated mark.

    Slide size by default; smaller sizes (the brief's) get smaller title, mark and footnote. The axes
    area is left to constrained layout inside a band between the title and the footnote.
    """
    slide = size[0] >= SLIDE_INCHES[0]
    bottom = 0.13 if slide else 0.16
    fig = Figure(figsize=size, dpi=DPI, layout=ConstrainedLayoutEngine(rect=(0.01, bottom, 0.98, 0.9 - bottom)))
    fig.text(0.015, 0.965, title, ha="left", va="top", fontsize=28 if slide else 22, color="#1a1a1a")
    fig.text(0.015, 0.02, footnote_text(note, labels, extra_note), ha="left", va="bottom",
             fontsize=11.5 if slide else 9, color=NEUTRAL, linespacing=1.4)
    if note.simulated:
        fig.text(0.985, 0.965, labels("mark.simulated"), ha="right", va="top", fontsize=20 if slide else 15,
                 color=SIMULATED_RED, bbox={"boxstyle": "round,pad=0.35", "facecolor": "white",
                                            "edgecolor": SIMULATED_RED, "linewidth": 2.5})
    return fig


def _rows(results: pd.DataFrame, *, analysis_type: str, variable: str, group: str = "all") -> pd.DataFrame:
    """Rows of the tidy results table for one estimate per team (and per group value).

    ``variable`` may name the team as ``{team}``: "in_need_{team}" selects in_need_elderly for the
    elderly team, in_need_youth for youth, and so on (analysis/demand.py's naming).
    """
    missing = {"analysis_type", "team", "variable", "value", "group", "group_value", "estimate", "ci_low",
               "ci_high", "n", "suppressed", "unit"} - set(results.columns)
    if missing:
        raise AnalysisError(f"results table lacks columns {sorted(missing)}", file="demand/results.csv",
                            hint="see docs/contracts.md, tidy results table")
    wanted = results["team"].map({t: variable.format(team=t) for t in results["team"].unique()})
    rows = results[(results["analysis_type"] == analysis_type) & (results["variable"] == wanted)
                   & (results["group"] == group)]
    if rows.empty:
        available = sorted(results.loc[results["analysis_type"] == analysis_type, "variable"].unique())
        raise AnalysisError(f"no '{analysis_type}' rows for variable '{variable}' by '{group}'",
                            file="demand/results.csv", column="variable",
                            hint=f"variables with that analysis_type: {available[:12]}")
    return rows


def _suppressed(rows: pd.DataFrame, threshold: int) -> pd.Series:
    """Cells not to show: flagged by disclosure control, under the respondent threshold, or missing."""
    flag = rows["suppressed"].astype(str).str.lower().isin(["true", "1", "yes"])
    small = (pd.to_numeric(rows["n"], errors="coerce") < threshold).fillna(True).astype(bool)
    return flag | small | rows["estimate"].isna()


def _thousands(value: float) -> str:
    return f"{value:,.0f}"


def _hbar(ax, names: list[str], rows: pd.DataFrame, colours: list[str], fmt, hidden: np.ndarray,
          hidden_text: str, scale: float = 1.0) -> None:
    """Horizontal bars with 95% CI whiskers and the value printed past the whisker, in row order from the top.

    Rows in ``hidden`` (suppressed by disclosure control) get no bar and no number, only ``hidden_text``.
    """
    y = np.arange(len(rows))[::-1]
    est = np.where(hidden, np.nan, rows["estimate"].to_numpy(float) * scale)
    low = np.where(hidden, np.nan, rows["ci_low"].to_numpy(float) * scale)
    high = np.where(hidden, np.nan, rows["ci_high"].to_numpy(float) * scale)
    top = np.nanmax(high) if (~hidden).any() else 1.0
    ax.barh(y[~hidden], est[~hidden], color=np.asarray(colours)[~hidden], height=0.62)
    ax.errorbar(est[~hidden], y[~hidden], xerr=[(est - low)[~hidden], (high - est)[~hidden]], fmt="none",
                ecolor="#262626", elinewidth=1.8, capsize=6, capthick=1.8)
    pad = top * 0.015
    for yi, hi, value, gone in zip(y, high, est, hidden):
        ax.text(pad if gone else hi + pad, yi, hidden_text if gone else fmt(value), va="center", ha="left",
                fontsize=15 if gone else 17, color=NEUTRAL if gone else "#262626")
    ax.set_yticks(y, names)
    ax.set_xlim(0, top * 1.16)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=6))
    ax.xaxis.grid(True, color="#E6E6E6", linewidth=1)
    ax.set_axisbelow(True)
    ax.tick_params(axis="y", length=0, pad=10)


@styled
def demand_by_team(results: pd.DataFrame, labels: Labels, note: Note, variable: str = "in_need_{team}",
                   threshold: int = 10, size: tuple = SLIDE_INCHES) -> Figure:
    """Estimated residents (households for family) in need of each team's services, with 95% CIs."""
    rows = _rows(results, analysis_type="total", variable=variable).sort_values("estimate", ascending=False)
    names = [f"{labels.team(t)}（{labels(f'units.{u}')}）" if labels.lang == "zh"
             else f"{labels.team(t)} ({labels(f'units.{u}')})" for t, u in zip(rows["team"], rows["unit"])]
    fig = new_figure(labels("figures.demand_by_team.title"), note, labels, labels("footnote.ci"), size)
    ax = fig.add_subplot()
    _hbar(ax, names, rows, [labels.colour(t) for t in rows["team"]], _thousands,
          _suppressed(rows, threshold).to_numpy(), labels("suppressed", threshold=threshold))
    ax.set_xlabel(labels("figures.demand_by_team.xlabel"))
    ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    return fig


@styled
def top_services(results: pd.DataFrame, labels: Labels, note: Note, k: int = 10,
                 variable: str = "need_{team}", threshold: int = 10, size: tuple = SLIDE_INCHES) -> Figure:
    """The ``k`` service lines with the most households in need (``need_<team>`` totals), by team colour.

    Suppressed estimates cannot be ranked and are left out.
    """
    rows = _rows(results, analysis_type="total", variable=variable)
    rows = rows[(rows["value"].astype(str) != "other") & ~_suppressed(rows, threshold)].sort_values(["estimate", "team", "value"],
                                                                  ascending=[False, True, True]).head(k)
    names = [labels.service(t, s) for t, s in zip(rows["team"], rows["value"].astype(str))]
    fig = new_figure(labels("figures.top_services.title", k=len(rows)), note, labels, labels("footnote.ci"),
                     size)
    ax = fig.add_subplot()
    _hbar(ax, names, rows, [labels.colour(t) for t in rows["team"]], _thousands, np.zeros(len(rows), bool), "")
    ax.set_xlabel(labels("figures.top_services.xlabel"))
    ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    ax.tick_params(axis="y", labelsize=16)
    present = [t for t in labels.teams if t in set(rows["team"])]
    ax.legend([Patch(color=labels.colour(t)) for t in present], [labels.team(t) for t in present],
              loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=len(present))
    return fig


@styled
def unmet_need(results: pd.DataFrame, labels: Labels, note: Note, variable: str = "unmet_{team}",
               threshold: int = 10, size: tuple = SLIDE_INCHES) -> Figure:
    """Per team, the share of those in need who receive none of the team's services, with 95% CIs."""
    rows = _rows(results, analysis_type="prop", variable=variable).sort_values("estimate", ascending=False)
    fig = new_figure(labels("figures.unmet_need.title"), note, labels, labels("footnote.ci"), size)
    ax = fig.add_subplot()
    _hbar(ax, [labels.team(t) for t in rows["team"]], rows, [labels.colour(t) for t in rows["team"]],
          lambda v: f"{v:.0f}%", _suppressed(rows, threshold).to_numpy(), labels("suppressed", threshold=threshold),
          scale=100)
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
def demand_by_cunju(results: pd.DataFrame, labels: Labels, note: Note, variable: str = "in_need_{team}",
                    threshold: int = 10, size: tuple = SLIDE_INCHES, imprecise_width: float = 0.30) -> Figure:
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
    share = rows.pivot(index="group_value", columns="team", values="estimate").reindex(index=codes, columns=teams)
    hidden = rows.pivot(index="group_value", columns="team", values="hidden").reindex(index=codes, columns=teams)
    hidden = hidden.fillna(True).astype(bool)
    width = (rows["ci_high"].astype(float) - rows["ci_low"].astype(float)).rename("width")
    width = rows.assign(width=width).pivot(index="group_value", columns="team", values="width")
    imprecise = (width.reindex(index=codes, columns=teams) > imprecise_width).to_numpy() & ~hidden.to_numpy()
    values = np.ma.masked_array(share.to_numpy(float) * 100, mask=hidden.to_numpy())
    low, high = (rows.pivot(index="group_value", columns="team", values=c).reindex(index=codes, columns=teams)
                 .to_numpy(float) * 100 for c in ("ci_low", "ci_high"))
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
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=SUPPRESSED, edgecolor="#9E9E9E",
                               hatch="///", linewidth=0))
        ax.text(c, r, labels("suppressed_cell"), ha="center", va="center", fontsize=11, color="#404040")
    rr, cc = np.nonzero(~hidden.to_numpy())
    for r, c in zip(rr, cc):
        v = values[r, c]
        ink = "white" if v < 0.55 * vmax else "#1a1a1a"
        ax.text(c, r, f"{v:.0f}%", ha="center", va="center", fontsize=11, color=ink)
        ax.annotate(f"{low[r, c]:.0f}–{high[r, c]:.0f}", (c, r), xytext=(16, 0), textcoords="offset points",
                    ha="left", va="center", fontsize=8, color=ink)
    rr, cc = np.nonzero(imprecise)
    for r, c in zip(rr, cc):
        ax.annotate("±", (c, r), xytext=(-16, 0), textcoords="offset points", ha="right", va="center",
                    fontsize=10, color="white" if values[r, c] < 0.55 * vmax else "#1a1a1a")
    universe = rows.groupby("team")["universe"].first() if "universe" in rows.columns else {}
    ax.set_xticks(np.arange(len(teams)), [f"{labels.team(t)}\n{_denominator(universe.get(t), labels)}"
                                          for t in teams], fontsize=14)
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
    interval = Line2D([], [], linestyle="none", marker="$a–b$", markersize=16, markeredgewidth=0,
                      color="#1a1a1a")
    ax.legend([Patch(facecolor=SUPPRESSED, edgecolor="#9E9E9E", hatch="///"), interval, marker],
              [extra, labels("figures.demand_by_cunju.interval"),
               labels("figures.demand_by_cunju.imprecise", width=round(imprecise_width * 100))],
              loc="upper left", bbox_to_anchor=(0.0, 0.0), fontsize=12, borderaxespad=0.3, frameon=False,
              handlelength=1.6, labelspacing=0.3)
    return fig


@styled
def cunju_shrinkage(areas: pd.DataFrame, labels: Labels, note: Note, size: tuple = SLIDE_INCHES) -> Figure:
    """Direct and model-based 村居 estimates side by side, one panel per team: each 村居 a line from its
    direct estimate (left, dot area ∝ respondents) to its published estimate (right), so the pull of
    small samples towards the regression on the frame shows. ``areas``: :class:`analysis.sae.CunjuFit`
    ``areas`` (team, cunju, n, direct, estimate, method)."""
    teams = [t for t in labels.teams if t in set(areas["team"])]
    fig = new_figure(labels("figures.cunju_shrinkage.title"), note, labels,
                     labels("figures.cunju_shrinkage.key"), size)
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
        ax.scatter(np.zeros(len(rows)), both[:, 0], s=4 + 2 * rows["n"].to_numpy(float), color=NEUTRAL,
                   alpha=0.7, linewidths=0)
        ax.scatter(np.ones(len(rows)), both[:, 1], s=28, color=labels.colour(team), zorder=3)
        ax.set_xticks([0, 1], [labels("figures.cunju_shrinkage.direct"),
                               labels("figures.cunju_shrinkage.model")], fontsize=13)
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(labels.team(team), color=labels.colour(team), fontsize=16)
        ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:.0f}%"))
    axes[0].set_ylabel(labels("figures.cunju_shrinkage.ylabel"), fontsize=14)
    return fig


STAFFING_COLUMNS = {
    "allocation": {"team", "required", "social_workers", "other_staff"},
    "replicate_allocations": {"replicate", "team", "required", "social_workers", "other_staff"},
    "sensitivity": {"assumption", "base", "low", "high", "required_base", "required_low", "required_high"},
}


def require_columns(frame: pd.DataFrame, name: str) -> None:
    """AnalysisError naming the staffing table and its missing columns (analysis/staffing.py writes them)."""
    missing = STAFFING_COLUMNS[name] - set(frame.columns)
    if missing:
        raise AnalysisError(f"staffing table lacks columns {sorted(missing)}", file=f"staffing/{name}.csv",
                            hint="rerun notebook 04_team_sizing")


def assumption_label(key: str, labels: Labels) -> str:
    """Readable name of a dotted assumption key, e.g. teams.youth.casework.coverage -> 青少年 · 个案 · 覆盖率."""
    parts = [p for p in key.split(".") if p != "teams"]
    names = [labels.team(p) if p in labels.teams else labels.get(f"assumption_parts.{p}", p) for p in parts]
    return ("·" if labels.lang == "zh" else " · ").join(names)


@styled
def staffing_vs_even(allocation: pd.DataFrame, replicates: pd.DataFrame, labels: Labels, note: Note,
                     categories: tuple = ("social_workers", "other_staff"), size: tuple = SLIDE_INCHES) -> Figure:
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
        ax.bar(x, est, color=[labels.colour(t) for t in order], width=0.62,
               label=labels("figures.staffing.recommended"))
        ax.errorbar(x, est, yerr=[np.clip(est - low, 0, None), np.clip(high - est, 0, None)], fmt="none",
                    ecolor="#262626", elinewidth=1.8, capsize=7, capthick=1.8,
                    label=labels("figures.staffing.interval"))
        ax.axhline(even, color=NEUTRAL, linestyle="--", linewidth=2, label=labels("figures.staffing.even"))
        ax.set_xticks(x, [f"{labels.team(t)}\n{v:g}" for t, v in zip(order, est)])
        ax.tick_params(axis="x", length=0, labelsize=18 if len(categories) == 1 else 15)
        name = labels(f"staff_category.{category}")
        ax.set_title(f"{name}（{est.sum():g}）" if labels.lang == "zh" else f"{name} ({est.sum():g})", loc="left")
        ax.set_ylim(0, max(np.nanmax(high), est.max(), even) * 1.4)  # headroom for the legend
        ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.yaxis.grid(True, color="#E6E6E6", linewidth=1)
        ax.set_axisbelow(True)
        ax.spines["left"].set_visible(True)
    axes[0].set_ylabel(labels("figures.staffing.ylabel"))
    axes[-1].legend(loc="upper right", ncols=3 if len(axes) == 1 else 1, fontsize=14, handlelength=1.5,
                    columnspacing=1.2)
    return fig


@styled
def sensitivity_tornado(sensitivity: pd.DataFrame, labels: Labels, note: Note, top: int = 10,
                        size: tuple = SLIDE_INCHES) -> Figure:
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
    ax.barh(y, rows["required_low"] - base, left=base, color=LIGHT, height=0.6,
            label=labels("figures.sensitivity.low"))
    ax.barh(y, rows["required_high"] - base, left=base, color=NEUTRAL, height=0.6,
            label=labels("figures.sensitivity.high"))
    ax.axvline(base, color="#1a1a1a", linewidth=2)
    names = [f"{assumption_label(a, labels)}  {lo:.3g}–{hi:.3g}"
             for a, lo, hi in zip(rows["assumption"], rows["low"], rows["high"])]
    ax.set_yticks(y, names, fontsize=14)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(labels("figures.sensitivity.xlabel"))
    ax.xaxis.grid(True, color="#E6E6E6", linewidth=1)
    ax.set_axisbelow(True)
    ax.text(base, y.max() + 0.75, f" {labels('figures.sensitivity.base')} {base:.1f}", ha="left",
            va="bottom", fontsize=15)
    ax.set_ylim(-0.6, y.max() + 1.4)
    ax.legend(loc="lower right")
    return fig


WEIGHT_STAGES = {"weight_base": "design", "weight_nr": "nonresponse", "weight": "raked"}


@styled
def weight_distribution(persons: pd.DataFrame, labels: Labels, note: Note, size: tuple = SLIDE_INCHES) -> Figure:
    """Person weights after each weighting step (design, nonresponse, raking), one box each (for researchers).

    Drawn with seaborn. seaborn 0.13 passes matplotlib's ``vert=`` to ``boxplot``, which matplotlib 3.11
    deprecates; that one warning is filtered here, by message and module, and nothing else.
    """
    for column in WEIGHT_STAGES:
        if column not in persons.columns:
            raise AnalysisError("weighted persons table lacks a weight column", file="weights/persons.parquet",
                                column=column, hint="run notebook 02_weight first")
    long = persons[list(WEIGHT_STAGES)].rename(columns=WEIGHT_STAGES).melt(var_name="stage", value_name="weight")
    long["stage"] = long["stage"].map(lambda s: labels(f"figures.weight_distribution.{s}"))
    fig = new_figure(labels("figures.weight_distribution.title"), note, labels, size=size)
    ax = fig.add_subplot()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"vert: bool was deprecated", category=DeprecationWarning,
                                module="seaborn")
        seaborn.boxplot(data=long, x="weight", y="stage", hue="stage", ax=ax, legend=False, width=0.55,
                        palette=[NEUTRAL, "#56B4E9", "#0072B2"], fliersize=3, linewidth=1.5)
    ax.set_xlabel(labels("figures.weight_distribution.xlabel"))
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelsize=16, length=0)
    ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    return fig


def first_reasons(deletion_log: pd.DataFrame, reason: str | None = None) -> pd.Series:
    """Deleted submissions per reason, each counted once under its first check (``check_id`` is a ";"-list
    as the clean stage writes it; else ``reason`` or ``issue``, as cleaningtools), most frequent first."""
    reason = reason or next((c for c in ("check_id", "reason", "issue") if c in deletion_log.columns), None)
    if reason is None:
        raise AnalysisError("deletion log has no 'check_id', 'reason' or 'issue' column",
                            file="clean/deletion_log.csv", column="check_id")
    first = deletion_log[reason].astype(str).str.split(";").str[0].str.strip()
    return first.value_counts().sort_index().sort_values(ascending=False, kind="stable")


@styled
def cleaning_funnel(households: pd.DataFrame, deletion_log: pd.DataFrame, labels: Labels, note: Note,
                    reason: str | None = None, size: tuple = SLIDE_INCHES) -> Figure:
    """From raw submissions to the clean sample: one bar per deletion reason (for researchers).

    Raw = clean households + deleted submissions (the clean stage asserts this accounting). Each deleted
    submission counts once, under its first check (``check_id``, a ";"-list, as the clean stage writes
    it), else under ``reason`` or ``issue`` (cleaningtools).
    """
    counts = first_reasons(deletion_log, reason)
    clean, raw = len(households), len(households) + int(counts.sum())
    steps = [labels("figures.cleaning_funnel.raw")] + [
        labels.get(f"deletion_reason.{r}", r) for r in counts.index] + [labels("figures.cleaning_funnel.clean")]
    left = np.concatenate([[0], raw - np.cumsum(counts.to_numpy()), [0]])
    width = np.concatenate([[raw], counts.to_numpy(), [clean]])
    colours = [NEUTRAL] + [SIMULATED_RED] * len(counts) + ["#0072B2"]
    fig = new_figure(labels("figures.cleaning_funnel.title"), note, labels, size=size)
    ax = fig.add_subplot()
    y = np.arange(len(steps))[::-1]
    ax.barh(y, width, left=left, color=colours, height=0.6)
    for yi, l, w, i in zip(y, left, width, range(len(steps))):
        text = f"{w:,.0f}" if i in (0, len(steps) - 1) else f"−{w:,.0f}"
        ax.text(l + w + raw * 0.01, yi, text, va="center", fontsize=15)
    ax.set_yticks(y, steps, fontsize=15)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(0, raw * 1.1)
    ax.set_xlabel(labels("figures.cleaning_funnel.xlabel"))
    ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    return fig


def save_figure(fig: Figure, fig_dir: str | Path, name: str, formats: tuple = FORMATS) -> list[Path]:
    """Write ``fig`` as ``<name>.png`` (300 dpi) and ``<name>.svg``, with fixed metadata: same bytes on rerun."""
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    metadata = {"png": PNG_METADATA, "svg": SVG_METADATA, "pdf": {"CreationDate": None, "Producer": None,
                                                                  "Creator": None}}
    paths = []
    with house_style():
        for fmt in formats:
            path = fig_dir / f"{name}.{fmt}"
            fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata[fmt])
            paths.append(path)
    return paths


def preview(paths: Path | list[Path], width: int = 1200):
    """A saved figure, scaled to ``width`` pixels, as an image a notebook shows (keeps notebooks small;
    the full-size files are in ``figures/``). ``paths`` may be the list :func:`save_figure` returns."""
    from IPython.display import Image as Shown
    from PIL import Image

    path = next(p for p in ([paths] if isinstance(paths, str | Path) else paths) if Path(p).suffix == ".png")
    with Image.open(path) as image:
        small = image.convert("RGB").resize((width, round(image.height * width / image.width)),
                                            Image.Resampling.LANCZOS)
    small = small.quantize(128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)  # a quarter the bytes
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    return Shown(data=buffer.getvalue(), format="png")


def read_outputs(out_dir: str | Path) -> dict:
    """The stage outputs the figures and the brief read, from ``out_dir`` (docs/contracts.md).

    Returns a dict with ``results`` (demand/results.csv), ``allocation``, ``replicate_allocations``,
    ``sensitivity`` (staffing/), ``households``, ``persons``, ``deletion_log`` (clean/) and ``provenance``;
    ``cunju_model`` (demand/cunju_model.csv) when the demand stage wrote it.
    """
    out_dir = Path(out_dir)
    paths = {
        "results": out_dir / "demand" / "results.csv",
        "allocation": out_dir / "staffing" / "allocation.csv",
        "replicate_allocations": out_dir / "staffing" / "replicate_allocations.csv",
        "sensitivity": out_dir / "staffing" / "sensitivity.csv",
        "households": out_dir / "clean" / "households.parquet",
        "persons": out_dir / "clean" / "persons.parquet",
        "deletion_log": out_dir / "clean" / "deletion_log.csv",
        "provenance": out_dir / "clean" / "provenance.json",
    }
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise AnalysisError(f"stage output missing: {missing[0]}", file=missing[0],
                            hint="run the earlier notebooks first (python -m analysis run)")
    outputs = {name: pd.read_csv(path, dtype={"group_value": str, "value": str}, keep_default_na=True)
               for name, path in paths.items() if path.suffix == ".csv"}
    outputs["households"] = pd.read_parquet(paths["households"])
    outputs["persons"] = pd.read_parquet(paths["persons"])
    outputs["provenance"] = json.loads(paths["provenance"].read_text(encoding="utf-8"))
    model = out_dir / "demand" / "cunju_model.csv"  # model-based 村居 estimates (analysis/sae.py), when made
    if model.exists():
        outputs["cunju_model"] = pd.read_csv(model, dtype={"cunju": str}, keep_default_na=False, na_values=[""])
    return outputs


def make_figures(outputs: dict, labels: Labels, note: Note, threshold: int = 10,
                 names: tuple | None = None, size: tuple = SLIDE_INCHES) -> dict[str, Figure]:
    """The figures ``names`` (default: the whole set), by file name, from :func:`read_outputs`' dict."""
    results = outputs.get("results")
    makers = {
        "demand_by_team": lambda: demand_by_team(results, labels, note, threshold=threshold, size=size),
        "top_services": lambda: top_services(results, labels, note, threshold=threshold, size=size),
        "unmet_need": lambda: unmet_need(results, labels, note, threshold=threshold, size=size),
        "demand_by_cunju": lambda: demand_by_cunju(results, labels, note, threshold=threshold, size=size),
        "staffing_vs_even": lambda: staffing_vs_even(outputs["allocation"], outputs["replicate_allocations"],
                                                     labels, note, size=size),
        "sensitivity_tornado": lambda: sensitivity_tornado(outputs["sensitivity"], labels, note, size=size),
        "cleaning_funnel": lambda: cleaning_funnel(outputs["households"], outputs["deletion_log"], labels,
                                                   note, size=size),
        "cunju_shrinkage": lambda: cunju_shrinkage(outputs["cunju_model"], labels, note, size=size),
    }
    default = [n for n in makers if n != "cunju_shrinkage" or "cunju_model" in outputs]  # model table optional
    return {name: makers[name]() for name in (names or default)}


def save_figures(figures: dict[str, Figure], fig_dir: str | Path, formats: tuple = FORMATS) -> dict:
    """Save every figure with :func:`save_figure`; returns the written paths by figure name."""
    return {name: save_figure(fig, fig_dir, name, formats) for name, fig in figures.items()}


@styled
def annual_change(table: pd.DataFrame, labels: Labels, note: Note, english: Labels | None = None,
                  extra_note: str | None = None, size: tuple = SLIDE_INCHES) -> Figure:
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

    fig = new_figure(both("figures.annual_change.title", first=years[0], second=years[-1]), note, labels,
                     "\n".join(p for p in (extra_note, both("figures.annual_change.key", "\n")) if p), size)
    fig.get_layout_engine().set(rect=(0.01, 0.23, 0.98, 0.67), wspace=0.08, hspace=0.06)
    measures = [m for m in ("reach", "unmet", "need_any", "aware") if m in set(rows["measure"])]
    axes = fig.subplots(2, 2, squeeze=False).ravel()
    most = max(rows.groupby("measure")["team"].nunique())
    for ax, measure in zip(axes, measures):
        part = rows[rows["measure"] == measure]
        teams = list(dict.fromkeys(part["team"]))
        wide = {c: part.pivot_table(index="team", columns="wave", values=c, aggfunc="first").reindex(teams) * 100
                for c in ("estimate", "ci_low", "ci_high")}
        y = np.arange(most)[::-1][:len(teams)].astype(float)
        top = np.nanmax(wide["ci_high"][years].to_numpy(float)) if wide["ci_high"][years].notna().any().any() else 1.0
        colours = np.asarray([labels.colour(t) if t in labels.teams else NEUTRAL for t in teams])
        for year, shift, alpha in zip(years, (0.2, -0.2), (0.35, 1.0)):
            value, low, high = (wide[c][year].to_numpy(float) for c in ("estimate", "ci_low", "ci_high"))
            shown = ~np.isnan(value)
            ax.barh(y[shown] + shift, value[shown], height=0.38, color=colours[shown], alpha=alpha)
            ax.errorbar(value[shown], y[shown] + shift, xerr=[(value - low)[shown], (high - value)[shown]],
                        fmt="none", ecolor="#262626", elinewidth=1.2, capsize=3)
            for yi, v, h, ok in zip(y + shift, value, high, shown):
                ax.text((h if ok else 0) + top * 0.015, yi, f"{v:.0f}%" if ok else labels("suppressed_cell"),
                        va="center", fontsize=10, color="#262626" if ok else NEUTRAL)
        change = part[part["wave"] == "change"].set_index("team").reindex(teams)
        ax.text(1.06, -0.03, both("figures.annual_change.change_header", "\n"), transform=ax.transAxes,
                va="top", ha="left", fontsize=11, color=NEUTRAL)
        for yi, (_, c) in zip(y, change.iterrows()):
            significant = c["ci_low"] > 0 or c["ci_high"] < 0
            interval = f"[{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}]"
            if pd.isna(c["estimate"]):
                lines = (labels("suppressed_cell"), "")
            elif significant:
                lines = (f"{'▲' if c['estimate'] > 0 else '▼'} {100 * c['estimate']:+.1f}", interval)
            else:
                lines = (f"{100 * c['estimate']:+.1f}  {interval}", both("figures.annual_change.unclear"))
            ax.text(1.06, yi + 0.02, lines[0], transform=ax.get_yaxis_transform(), va="bottom", ha="left",
                    fontsize=15 if significant else 11, color="#1a1a1a" if significant else NEUTRAL,
                    fontweight="bold" if significant else "normal")
            ax.text(1.06, yi - 0.02, lines[1], transform=ax.get_yaxis_transform(), va="top", ha="left",
                    fontsize=10, color=NEUTRAL)
        ax.set_yticks(y, [team_name(t) for t in teams], fontsize=11)
        ax.set_ylim(-0.6, most - 0.4)
        ax.tick_params(axis="y", length=0)
        ax.set_xlim(0, top * 1.18)
        ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:.0f}%"))
        ax.tick_params(axis="x", labelsize=11)
        ax.xaxis.grid(True, color="#E6E6E6", linewidth=1)
        ax.set_axisbelow(True)
        ax.set_title(both(f"evaluation.{measure}"), loc="left", fontsize=16)
    for ax in axes[len(measures):]:
        ax.set_visible(False)
    fewest = min(range(len(measures)), key=lambda k: rows.loc[rows["measure"] == measures[k], "team"].nunique())
    axes[fewest].legend([Patch(color=NEUTRAL, alpha=0.35), Patch(color=NEUTRAL)], years, loc="lower right",
                        ncols=2, fontsize=13)
    return fig
