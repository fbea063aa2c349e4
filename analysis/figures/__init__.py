"""Figures for planners and leaders: one house style, a CJK font, bilingual labels, footnotes.

Owns: how every figure looks (font, sizes, the team colours of needs.yaml, footnote, simulated mark), the
figure functions themselves, the labels object (labels.yaml + needs.yaml + the instrument's choices) and
deterministic PNG/SVG files. Which stage draws which figure is :mod:`analysis.pipeline`'s business.

Every figure is drawn from the stage outputs named in docs/contracts.md (the tidy demand results table,
the staffing tables, the cleaning logs), never from typed-in numbers. Labels come from
``analysis/labels.yaml`` and from the instrument's question and choice labels; Simplified Chinese by
default, English with ``lang="en"``. Every figure carries a footnote (source, unweighted N, weighting
target, fieldwork dates) and, for simulated data, a visible "模拟数据 / simulated data" mark.

Modules: :mod:`~analysis.figures.style` (house style, labels, footnote, saving),
:mod:`~analysis.figures.demand`, :mod:`~analysis.figures.staffing`, :mod:`~analysis.figures.process` (cleaning
and weights), :mod:`~analysis.figures.annual` (the annual evaluation); here the set the pipeline draws from
the stage outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis.errors import AnalysisError
from analysis.figures.annual import annual_change
from analysis.figures.demand import cunju_shrinkage, demand_by_cunju, demand_by_team, top_services, unmet_need
from analysis.figures.process import cleaning_funnel, first_reasons, weight_distribution
from analysis.figures.staffing import (
    STAFFING_COLUMNS,
    assumption_label,
    require_columns,
    sensitivity_tornado,
    staffing_vs_even,
)
from analysis.figures.style import (
    CJK_FAMILY,
    DPI,
    FORMATS,
    LABELS_PATH,
    PNG_METADATA,
    SLIDE_INCHES,
    SVG_METADATA,
    Labels,
    Note,
    data_note,
    footnote_text,
    house_style,
    load_labels,
    preview,
    register_cjk_font,
    save_figure,
    save_figures,
)

__all__ = [
    "CJK_FAMILY",
    "DPI",
    "FORMATS",
    "LABELS_PATH",
    "Labels",
    "Note",
    "PNG_METADATA",
    "SLIDE_INCHES",
    "STAFFING_COLUMNS",
    "SVG_METADATA",
    "annual_change",
    "assumption_label",
    "cleaning_funnel",
    "cunju_shrinkage",
    "data_note",
    "demand_by_cunju",
    "demand_by_team",
    "first_reasons",
    "footnote_text",
    "house_style",
    "load_labels",
    "preview",
    "register_cjk_font",
    "require_columns",
    "save_figure",
    "save_figures",
    "sensitivity_tornado",
    "staffing_vs_even",
    "top_services",
    "unmet_need",
    "weight_distribution",
    "read_outputs",
    "make_figures",
]


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
        raise AnalysisError(
            f"stage output missing: {missing[0]}",
            file=missing[0],
            hint="run the earlier notebooks first (python -m analysis run)",
        )
    outputs = {
        name: pd.read_csv(path, dtype={"group_value": str, "value": str}, keep_default_na=True)
        for name, path in paths.items()
        if path.suffix == ".csv"
    }
    outputs["households"] = pd.read_parquet(paths["households"])
    outputs["persons"] = pd.read_parquet(paths["persons"])
    outputs["provenance"] = json.loads(paths["provenance"].read_text(encoding="utf-8"))
    model = out_dir / "demand" / "cunju_model.csv"  # model-based 村居 estimates (analysis/sae.py), when made
    if model.exists():
        outputs["cunju_model"] = pd.read_csv(
            model, dtype={"cunju": str}, keep_default_na=False, na_values=[""]
        )
    return outputs


def make_figures(
    outputs: dict,
    labels: Labels,
    note: Note,
    threshold: int = 10,
    names: tuple | None = None,
    size: tuple = SLIDE_INCHES,
) -> dict[str, Figure]:
    """The figures ``names`` (default: the whole set), by file name, from :func:`read_outputs`' dict."""
    results = outputs.get("results")
    makers = {
        "demand_by_team": lambda: demand_by_team(results, labels, note, threshold=threshold, size=size),
        "top_services": lambda: top_services(results, labels, note, threshold=threshold, size=size),
        "unmet_need": lambda: unmet_need(results, labels, note, threshold=threshold, size=size),
        "demand_by_cunju": lambda: demand_by_cunju(results, labels, note, threshold=threshold, size=size),
        "staffing_vs_even": lambda: staffing_vs_even(
            outputs["allocation"], outputs["replicate_allocations"], labels, note, size=size
        ),
        "sensitivity_tornado": lambda: sensitivity_tornado(outputs["sensitivity"], labels, note, size=size),
        "cleaning_funnel": lambda: cleaning_funnel(
            outputs["households"], outputs["deletion_log"], labels, note, size=size
        ),
        "cunju_shrinkage": lambda: cunju_shrinkage(outputs["cunju_model"], labels, note, size=size),
    }
    default = [
        n for n in makers if n != "cunju_shrinkage" or "cunju_model" in outputs
    ]  # model table optional
    return {name: makers[name]() for name in (names or default)}
