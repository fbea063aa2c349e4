"""Survey folders in, the evaluation's files out: each wave through the main job's clean and weights stages,
the table, the summary paragraph (zh and en) and the figure."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd

from analysis import indicators, weights
from analysis.errors import AnalysisError
from analysis.evaluate.evaluation import Evaluation, evaluate
from analysis.evaluate.measures import CENTRE
from analysis.evaluate.waves import CHANGE, Wave

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FORM = ROOT / "survey" / "instrument" / "leliu_needs_survey.xlsx"
EXPORT_SUFFIXES = (".xlsx", ".csv", ".sav")


def find_export(folder: Path) -> Path:
    """The folder holding a survey folder's raw export: ``raw/kobo`` (Kobo), else ``raw/wjx`` (问卷星), else
    ``raw`` (the reader picks the main file; the Kobo folder's CSV and xlsx give the same clean tables)."""
    for sub in ("raw/kobo", "raw/wjx", "raw"):
        place = folder / sub
        if place.is_dir() and any(p.suffix.lower() in EXPORT_SUFFIXES for p in place.iterdir()):
            return place
    raise AnalysisError(
        "no raw export in this survey folder",
        file=str(folder / "raw"),
        hint="a wave folder holds raw/ (the export) and frame/ (population_frame.csv, "
        "sample_design.csv), as survey/ does",
    )


def fieldwork_year(households: pd.DataFrame) -> int | None:
    """The year most interviews took place (``today``, else ``start``), or None without dates."""
    for column in ("today", "start"):
        if column in households:
            dates = pd.to_datetime(households[column], errors="coerce", utc=True).dropna()
            if len(dates):
                return int(dates.dt.year.mode().min())
    return None


def read_wave(
    folder: str | Path, out: str | Path, year: int | None = None, form: str | Path | None = None
) -> Wave:
    """One survey folder through the main job's clean and weights stages (``out/clean``, ``out/weights``;
    no replicate weights), weighted to the folder's own frame.

    The form is ``form``, else the folder's ``instrument/*.xlsx``, else the bundled one; the year is
    ``year``, else the year of most interviews.
    """
    from analysis import pipeline, validation

    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise AnalysisError(
            "survey folder not found", file=str(folder), hint="pass two survey folders to --waves"
        )
    for name in ("population_frame", "sample_design"):
        if not (folder / "frame" / f"{name}.csv").is_file():
            raise AnalysisError(
                "the survey folder has no frame file",
                file=str(folder / "frame" / f"{name}.csv"),
                hint="each wave needs its own frame/population_frame.csv and frame/sample_design.csv",
            )
    form = Path(form) if form else next(iter(sorted((folder / "instrument").glob("*.xlsx"))), DEFAULT_FORM)
    inputs = pipeline.Inputs(data=find_export(folder), form=form, frame=folder / "frame")
    pipeline.clean(out, inputs, fig_dir=None)
    built = pipeline.weights(out, inputs, fig_dir=None, replicates=0).built
    raw = folder / "raw" / "PROVENANCE.json"
    psus = json.loads(raw.read_text(encoding="utf-8")).get("psus") if raw.is_file() else None
    year = year or fieldwork_year(built.households)
    if year is None:
        raise AnalysisError(
            "cannot tell the year of this wave (no interview dates)",
            file=str(folder),
            hint="give the years with --years 2012 2013",
        )
    note = pipeline.data_note(out)
    files = validation.planted(inputs.data, out)
    change = files.truth.with_name("truth_change.csv") if files else None
    return Wave(
        year,
        built.households,
        built.persons,
        pd.read_csv(inputs.frame / "population_frame.csv"),
        pd.read_csv(inputs.sample_design),
        weights.read_composition(inputs.frame),
        simulated=note.simulated,
        psus=psus,
        fieldwork=note.date,
        planted=change if change is not None and change.is_file() else None,
    )


def figure_note(evaluation: Evaluation, labels):
    """The footnote facts of the evaluation figure: both waves' interviews, dates and frames."""
    from analysis.figures import Note

    first, second = evaluation.waves
    counts = {
        f"{key}_{unit}": len(getattr(wave, unit))
        for key, wave in (("first", first), ("second", second))
        for unit in ("households", "persons")
    }
    return Note(
        households=counts["first_households"] + counts["second_households"],
        persons=counts["first_persons"] + counts["second_persons"],
        date=f"{first.fieldwork} · {second.fieldwork}",
        simulated=evaluation.simulated,
        weighted_to=labels("figures.annual_change.weighted_to"),
    ), labels("figures.annual_change.n_waves", first=first.year, second=second.year, **counts)


def write_evaluation(
    evaluation: Evaluation, out: str | Path, definitions: dict | None = None
) -> dict[str, Path]:
    """Write ``evaluation.csv`` (the tidy, suppressed table), ``summary.json`` (the paragraph in zh and en)
    and, for simulated waves, ``DATA_SOURCE.txt``; returns the paths by name."""
    from analysis.pipeline import SIMULATED_NOTE

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "table": out / "evaluation.csv",
        "summary": out / "summary.json",
        "note": out / "DATA_SOURCE.txt",
    }
    evaluation.table.to_csv(paths["table"], index=False, lineterminator="\n")
    text = {lang: summary(evaluation, lang, definitions) for lang in ("zh", "en")}
    paths["summary"].write_text(json.dumps(text, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if evaluation.simulated:
        paths["note"].write_text(SIMULATED_NOTE, encoding="utf-8")
    else:
        paths["note"].unlink(missing_ok=True)
        del paths["note"]
    return paths


def run_evaluation(
    folders: list[str | Path],
    out: str | Path,
    fig_dir: str | Path | None = ROOT / "figures",
    years: list[int] | None = None,
    psus: str | None = None,
    form: str | Path | None = None,
    threshold: int | None = None,
) -> Evaluation:
    """``python -m analysis evaluate``: clean and weight each wave (``out/waves/<year>/``), compare them,
    write the table and summary into ``out`` (whole or not at all), then the figure ``annual_change`` into
    ``fig_dir``."""
    from analysis import figures, pipeline
    from analysis.demand import leadership_threshold
    from analysis.outputs import publishing

    if len(folders) != 2:
        raise AnalysisError(
            f"{len(folders)} waves given; the evaluation compares two", hint="--waves FIRST SECOND"
        )
    out = Path(out).resolve()
    with publishing(out.parent, out.name) as tmp:
        waves = [
            read_wave(folder, tmp / "waves" / f"wave{k + 1}", None if years is None else years[k], form)
            for k, folder in enumerate(folders)
        ]
        evaluation = evaluate(
            *waves, psus=psus, threshold=leadership_threshold() if threshold is None else threshold
        )
        for k, wave in enumerate(waves):  # named by year only once both years are known
            (tmp / "waves" / f"wave{k + 1}").rename(tmp / "waves" / str(wave.year))
        write_evaluation(evaluation, tmp)

    def draw() -> dict:
        labels, english = figures.load_labels("zh"), figures.load_labels("en")
        note, extra = figure_note(evaluation, labels)
        return {
            "annual_change": figures.annual_change(evaluation.table, labels, note, english, extra_note=extra)
        }

    return replace(evaluation, figures=pipeline.save_figures(draw, fig_dir))


# ----- the summary paragraph --------------------------------------------------------------------------------


def _percent(p: float) -> str:
    return f"{100 * p:.0f}%"


def _points(d: float) -> str:
    return f"{100 * d:+.1f}"


def summary(evaluation: Evaluation, lang: str = "zh", definitions: dict | None = None) -> str:
    """One paragraph on the Leliu-wide changes in ``lang`` ("zh" or "en"), numbers from the table.

    A change is said to rise or fall only when its 95% interval excludes zero (read from ``ci_low`` and
    ``ci_high`` themselves); every other change is "no clear change", whatever its estimate.
    """
    from analysis.figures import load_labels

    labels = load_labels(lang)
    definitions = indicators.load_needs() if definitions is None else definitions

    def text(key, **values):
        return labels(f"evaluation.{key}", **values)

    first, second = evaluation.years
    rows = evaluation.headline()
    clauses = []
    for measure in ("reach", "unmet", "need_any", "aware"):
        of = rows[rows["measure"] == measure]
        parts = {"rose": [], "fell": [], "unclear": [], "not_shown": []}
        for _indicator, group in of.groupby("indicator", sort=False):
            waves = group.set_index("wave")
            if CHANGE not in waves.index or pd.isna(waves.loc[CHANGE, "estimate"]):
                if not (waves["note"].astype(str).str.len() > 0).any():  # left out: said once, below
                    parts["not_shown"].append(_name(group["team"].iloc[0], labels, definitions))
                continue
            change = waves.loc[CHANGE]
            name = _name(change["team"], labels, definitions)
            if not (change["ci_low"] > 0 or change["ci_high"] < 0):
                parts["unclear"].append(name)
                continue
            item = text(
                "item",
                name=name,
                first=_percent(waves.loc[str(first), "estimate"]),
                second=_percent(waves.loc[str(second), "estimate"]),
                change=_points(change["estimate"]),
                low=_points(change["ci_low"]),
                high=_points(change["ci_high"]),
            )
            parts["rose" if change["estimate"] > 0 else "fell"].append(item)
        said = [
            text(kind, **{"names" if kind in ("unclear", "not_shown") else "items": _listing(items, lang)})
            for kind, items in parts.items()
            if items
        ]
        if said:
            clauses.append(
                text(
                    "measure",
                    measure=labels(f"evaluation.{measure}"),
                    parts=("，" if lang == "zh" else ", and ").join(said),
                )
            )
    sentences = [
        text(
            "opening", first=first, second=second, simulated=text("simulated") if evaluation.simulated else ""
        )
        + text("join").join(clauses)
        + text("stop")
    ]
    if evaluation.left_out:
        gone = evaluation.table[evaluation.table["indicator"].isin(list(evaluation.left_out))]
        names = [
            f"{labels('evaluation.' + m)} · {_name(t, labels, definitions)}"
            for m, t in zip(gone["measure"], gone["team"])
        ]
        sentences.append(text("left_out", names=_listing(list(dict.fromkeys(names)), lang)))
    sentences += [text(evaluation.psus, second=second), text("rule")]
    return ("" if lang == "zh" else " ").join(sentences)


def _listing(items: list[str], lang: str) -> str:
    """ "a、b、c" in Chinese, "a, b and c" in English."""
    if lang == "zh" or len(items) < 2:
        return "、".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _name(team: str, labels, definitions: dict) -> str:
    """A team's display name (``needs.yaml``); the centre's row is all households."""
    if team == CENTRE:
        return labels("evaluation.centre")
    return definitions["teams"][team].get("label", {}).get(labels.lang, team)
