"""Figures of the data's path: the cleaning funnel (submissions kept and deleted by reason) and the weights
after each step."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import seaborn
from matplotlib import ticker
from matplotlib.figure import Figure

from analysis.errors import AnalysisError
from analysis.figures.style import NEUTRAL, SIMULATED_RED, SLIDE_INCHES, Labels, Note, new_figure, styled

WEIGHT_STAGES = {"weight_base": "design", "weight_nr": "nonresponse", "weight": "raked"}


@styled
def weight_distribution(
    persons: pd.DataFrame, labels: Labels, note: Note, size: tuple = SLIDE_INCHES
) -> Figure:
    """Person weights after each weighting step (design, nonresponse, raking), one box each (for researchers).

    Drawn with seaborn. seaborn 0.13 passes matplotlib's ``vert=`` to ``boxplot``, which matplotlib 3.11
    deprecates; that one warning is filtered here, by message and module, and nothing else.
    """
    for column in WEIGHT_STAGES:
        if column not in persons.columns:
            raise AnalysisError(
                "weighted persons table lacks a weight column",
                file="weights/persons.parquet",
                column=column,
                hint="run notebook 02_weight first",
            )
    long = (
        persons[list(WEIGHT_STAGES)].rename(columns=WEIGHT_STAGES).melt(var_name="stage", value_name="weight")
    )
    long["stage"] = long["stage"].map(lambda s: labels(f"figures.weight_distribution.{s}"))
    fig = new_figure(labels("figures.weight_distribution.title"), note, labels, size=size)
    ax = fig.add_subplot()
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"vert: bool was deprecated", category=DeprecationWarning, module="seaborn"
        )
        seaborn.boxplot(
            data=long,
            x="weight",
            y="stage",
            hue="stage",
            ax=ax,
            legend=False,
            width=0.55,
            palette=[NEUTRAL, "#56B4E9", "#0072B2"],
            fliersize=3,
            linewidth=1.5,
        )
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
        raise AnalysisError(
            "deletion log has no 'check_id', 'reason' or 'issue' column",
            file="clean/deletion_log.csv",
            column="check_id",
        )
    first = deletion_log[reason].astype(str).str.split(";").str[0].str.strip()
    return first.value_counts().sort_index().sort_values(ascending=False, kind="stable")


@styled
def cleaning_funnel(
    households: pd.DataFrame,
    deletion_log: pd.DataFrame,
    labels: Labels,
    note: Note,
    reason: str | None = None,
    size: tuple = SLIDE_INCHES,
) -> Figure:
    """From raw submissions to the clean sample: one bar per deletion reason (for researchers).

    Raw = clean households + deleted submissions (the clean stage asserts this accounting). Each deleted
    submission counts once, under its first check (``check_id``, a ";"-list, as the clean stage writes
    it), else under ``reason`` or ``issue`` (cleaningtools).
    """
    counts = first_reasons(deletion_log, reason)
    clean, raw = len(households), len(households) + int(counts.sum())
    steps = (
        [labels("figures.cleaning_funnel.raw")]
        + [labels.get(f"deletion_reason.{r}", r) for r in counts.index]
        + [labels("figures.cleaning_funnel.clean")]
    )
    left = np.concatenate([[0], raw - np.cumsum(counts.to_numpy()), [0]])
    width = np.concatenate([[raw], counts.to_numpy(), [clean]])
    colours = [NEUTRAL] + [SIMULATED_RED] * len(counts) + ["#0072B2"]
    fig = new_figure(labels("figures.cleaning_funnel.title"), note, labels, size=size)
    ax = fig.add_subplot()
    y = np.arange(len(steps))[::-1]
    ax.barh(y, width, left=left, color=colours, height=0.6)
    for yi, lo, w, i in zip(y, left, width, range(len(steps))):
        text = f"{w:,.0f}" if i in (0, len(steps) - 1) else f"−{w:,.0f}"
        ax.text(lo + w + raw * 0.01, yi, text, va="center", fontsize=15)
    ax.set_yticks(y, steps, fontsize=15)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(0, raw * 1.1)
    ax.set_xlabel(labels("figures.cleaning_funnel.xlabel"))
    ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    return fig
