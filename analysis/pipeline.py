"""The pipeline as five functions, one per stage: clean → weights → demand → staffing → brief.

Owns: which files each stage reads and writes under the output folder (``docs/contracts.md``), writing a
stage's folder whole or not at all (a temporary folder, then a move), the figures each stage draws, the
order of the stages and the defaults of a run (:class:`Inputs`).

Each stage reads only what the stage before it wrote (the clean stage reads the raw export and the form;
the weights stage also the population frame and the sample design) and returns a small result object
whose tables the notebooks show. Notebooks 01–05 call these functions; ``python -m analysis run
--no-notebooks`` calls the same ones (:func:`run_stages`), so both write the same bytes.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis import config, disclosure, drawing, validation
from analysis.drawing import BackgroundFigures
from analysis.errors import AnalysisError
from analysis.outputs import aside, publishing

if TYPE_CHECKING:  # matplotlib and seaborn are imported only where a figure is drawn
    from analysis import figures

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("clean", "weights", "demand", "staffing", "brief")
NOTEBOOKS = {
    "clean": "01_clean",
    "weights": "02_weight",
    "demand": "03_demand",
    "staffing": "04_team_sizing",
    "brief": "05_leadership_brief",
}
REPLICATES = 200  # bootstrap replicate weight sets carried through demand and staffing
REPLICATE_SEED = 20120411  # the centre's opening day (docs/sources.md §1.1), as a fixed seed
BREAK_EVEN_KEYS = 12  # most influential assumptions searched for the value that moves a social worker
SIMULATED_NOTE = (
    "模拟数据 / SIMULATED DATA\n"
    "本文件夹中的所有表格、图表和简报均由模拟调查数据生成（见 "
    "survey/raw/PROVENANCE.json），不描述勒流的真实居民。\n"
    "Every table, figure and brief in this folder was made from a simulated survey "
    "(survey/raw/PROVENANCE.json);\n"
    "none of it describes real Leliu residents.\n"
)


@dataclass(frozen=True)
class Inputs:
    """Everything a run reads besides the files the stages write: the raw export and its form, a person's
    cleaning decisions and settings, the population frame folder and the sample design."""

    data: Path = ROOT / "survey" / "raw" / "kobo" / "leliu_needs_survey.xlsx"
    form: Path = ROOT / "survey" / "instrument" / "leliu_needs_survey.xlsx"
    decisions: Path | None = None
    settings: Path | None = None
    frame: Path = ROOT / "survey" / "frame"
    design: Path | None = None  # default: <frame>/sample_design.csv

    def __post_init__(self):  # paths may be given as text (notebook parameters, command line)
        for name in ("data", "form", "decisions", "settings", "frame", "design"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))

    @property
    def sample_design(self) -> Path:
        return self.design or self.frame / "sample_design.csv"


# ----- writing a stage's files ------------------------------------------------------------------------------


def save_figures(
    draw: Callable[..., dict],
    fig_dir: str | Path | None,
    names: tuple[str, ...] | None = None,
    background: BackgroundFigures | None = None,
    arguments: Callable[[], dict] = dict,
) -> Mapping[str, list[Path]]:
    """Draw the figures (``draw(**arguments(), names=names)`` returns them by name) and write each (PNG and
    SVG) into ``fig_dir`` whole (:func:`analysis.drawing.write_figures`); with ``background``, one job per
    figure in its worker process instead, and the paths are read when they are written. Nothing is drawn,
    and nothing ``arguments`` would read is read, when ``fig_dir`` is None (benchmarks)."""
    if fig_dir is None:
        return {}
    arguments = arguments()
    if background is not None and names:
        return background.submit(draw, fig_dir, names, arguments)
    return drawing.write_figures(draw, fig_dir, arguments if names is None else {**arguments, "names": names})


def _stage_figures(**arguments) -> dict:
    """:func:`analysis.figures.make_figures`, importing the figures (matplotlib, seaborn) only when drawn."""
    from analysis import figures

    return figures.make_figures(**arguments)


def _weight_figures(persons: pd.DataFrame, labels: figures.Labels, note: figures.Note, names: tuple) -> dict:
    """The weights stage's one figure, called as :func:`analysis.figures.make_figures` is (``names`` given,
    only this figure)."""
    from analysis import figures

    return {"weight_distribution": figures.weight_distribution(persons, labels, note)}


def _labels(lang: str, form=None, needs: dict | None = None) -> figures.Labels:
    from analysis import figures

    return figures.load_labels(lang, form, needs=needs)


def read_stage(out: Path, stage: str, names: list[str]) -> dict[str, Path]:
    """Paths of the files ``names`` a previous stage wrote into ``out/<stage>``; AnalysisError naming the
    first one missing and the stage to run."""
    paths = {name: Path(out) / stage / name for name in names}
    for path in paths.values():
        if not path.exists():
            raise AnalysisError(
                f"the {stage} stage's output is missing",
                file=str(path),
                hint=f"run the {stage} stage first (python -m analysis run --stage {stage})",
            )
    return paths


def data_note(out: Path) -> figures.Note:
    """The footnote facts of every figure (unweighted N, fieldwork dates, simulated) from ``out/clean``."""
    from analysis import figures

    paths = read_stage(out, "clean", ["households.parquet", "persons.parquet", "provenance.json"])
    return figures.data_note(
        pd.read_parquet(paths["households.parquet"]),
        pd.read_parquet(paths["persons.parquet"]),
        json.loads(paths["provenance.json"].read_text(encoding="utf-8")),
    )


def write_data_source_note(out: Path) -> None:
    """Say in the output folder itself whether its tables come from simulated data (``DATA_SOURCE.txt``).

    Figures and the brief carry the mark on the page; CSV and Parquet tables cannot, so a note sits beside
    them. The flag is the clean stage's (simulator checksums).
    """
    note = Path(out) / "DATA_SOURCE.txt"
    if validation.is_simulated(out):
        note.write_text(SIMULATED_NOTE, encoding="utf-8")
    else:
        note.unlink(missing_ok=True)


# ----- 01 clean ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanStage:
    """The clean stage's result (:class:`analysis.clean.CleanResult`), where it wrote, its figure, and the
    simulator's files when the export is simulated (else None)."""

    result: object
    folder: Path
    figures: Mapping[str, list[Path]]
    planted: validation.Planted | None

    def funnel(self, labels: figures.Labels) -> pd.DataFrame:
        """Raw submissions, minus each deletion reason (first reason of a submission), the clean
        interviews."""
        from analysis import figures

        counts = figures.first_reasons(self.result.deletion_log)
        steps = (
            [labels("figures.cleaning_funnel.raw")]
            + ["− " + labels.get(f"deletion_reason.{r}", r) for r in counts.index]
            + [labels("figures.cleaning_funnel.clean")]
        )
        n = [
            self.result.counts["raw_households"],
            *(-counts).tolist(),
            self.result.counts["clean_households"],
        ]
        return pd.DataFrame({"step": steps, "n": n})

    def checks(self) -> pd.DataFrame:
        """Log rows and interviews per check and default decision, most rows first."""
        log = self.result.cleaning_log
        table = log.groupby(["check_id", "change_type"]).agg(
            rows=("uuid", "size"), interviews=("uuid", "nunique")
        )
        return table.reset_index().sort_values(
            ["rows", "check_id"], ascending=[False, True], ignore_index=True
        )

    def examples(self) -> pd.DataFrame:
        """One log row per check (the first by uuid and question)."""
        log = self.result.cleaning_log.sort_values(["check_id", "uuid", "question"], na_position="first")
        return log.drop_duplicates("check_id")[
            ["check_id", "question", "old_value", "new_value", "change_type", "issue"]
        ].reset_index(drop=True)


def clean(
    out: str | Path,
    inputs: Inputs = Inputs(),
    lang: str = "zh",
    fig_dir: str | Path | None = ROOT / "figures",
    background: BackgroundFigures | None = None,
) -> CleanStage:
    """Stage 01: read the export with its form, run every check, apply the log (and a person's decisions),
    write ``clean/`` (docs/contracts.md) and ``DATA_SOURCE.txt``, and draw the cleaning funnel."""
    from analysis.clean import clean_survey

    out = Path(out)
    result = clean_survey(inputs.form, inputs.data, out, decisions=inputs.decisions, settings=inputs.settings)
    write_data_source_note(out)
    written = read_stage(out, "clean", ["households.parquet", "deletion_log.csv"])
    drawn = save_figures(
        _stage_figures,
        fig_dir,
        ("cleaning_funnel",),
        background,
        lambda: {
            "outputs": {
                "households": pd.read_parquet(written["households.parquet"]),
                "deletion_log": pd.read_csv(written["deletion_log.csv"], dtype=str),
            },
            "labels": _labels(lang),
            "note": data_note(out),
        },
    )
    return CleanStage(result, out / "clean", drawn, validation.planted(inputs.data, out))


# ----- 02 weights -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsStage:
    """The weights (:class:`analysis.weights.Weights`), the nonresponse classes, where they were written."""

    built: object
    classes: pd.DataFrame
    folder: Path
    figures: Mapping[str, list[Path]]

    @property
    def response_rate(self) -> float:
        return float(self.classes["responding"].sum() / self.classes["issued"].sum())

    @property
    def pooled(self) -> int:
        """Sampled PSUs pooled with others of their 村居 for the nonresponse adjustment."""
        return int((self.classes["class"] != self.classes["psu"]).sum())

    def response(self) -> pd.DataFrame:
        """Households issued and responding, and the response rate, per 村居."""
        table = self.classes.groupby("cunju")[["issued", "responding"]].sum()
        return table.assign(response_rate=table["responding"] / table["issued"])

    def distribution(self) -> pd.DataFrame:
        """Person weights after each step and the final household weights: size, spread, Kish deff."""
        rows = self.built.diagnostics.query("section == 'weights'")
        table = rows.pivot(index="category", columns="stage", values="value")
        return table.loc[
            ["n", "sum", "min", "p05", "median", "p95", "max", "max_over_median", "cv", "kish_deff"],
            ["base", "nonresponse", "trimmed", "raked", "household_final"],
        ]

    def margins(self) -> pd.DataFrame:
        """Frame totals beside the weighted totals before and after raking, with the relative gaps."""
        rows = self.built.diagnostics.query("section == 'margin'")
        table = rows.pivot_table(index=["variable", "category"], columns="stage", values="value", sort=False)
        table = table[["frame", "before", "after"]]
        return table.assign(
            before_gap=table["before"] / table["frame"] - 1, after_gap=table["after"] / table["frame"] - 1
        )

    def weighting_steps(self, definitions: dict) -> pd.DataFrame:
        """Each team's headline prevalence unweighted and after each weighting step (what each step
        changes)."""
        from analysis import demand

        table, _ = demand.prepare(self.built.households, self.built.persons, definitions)
        return demand.point_estimates(
            table,
            definitions,
            {"unweighted": None, "design": "weight_base", "nonresponse": "weight_nr", "raked": "weight"},
        )


WEIGHT_FILES = [
    "households.parquet",
    "persons.parquet",
    "person_replicates.parquet",
    "household_replicates.parquet",
    "diagnostics.csv",
]


def _write_replicates(table: pd.DataFrame, path: Path) -> None:
    """A replicate-weight table as Parquet, dictionary-encoding only its text (id) columns: trying a
    dictionary on each of 200 float columns took two thirds of the write time at 150,000 households
    (4.8 s of 7 for the person table) for a file about a quarter smaller."""
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    table.to_parquet(path, index=False, use_dictionary=text)


def weights(
    out: str | Path,
    inputs: Inputs = Inputs(),
    lang: str = "zh",
    fig_dir: str | Path | None = ROOT / "figures",
    replicates: int = REPLICATES,
    seed: int = REPLICATE_SEED,
    trim_max_ratio: float | None = None,
    background: BackgroundFigures | None = None,
) -> WeightsStage:
    """Stage 02: design weights, nonresponse adjustment, (optional trimming), raking to the frame and
    ``replicates`` bootstrap replicate weights; writes ``weights/`` and draws the weight distribution."""
    from analysis import weights as weighting

    out = Path(out)
    clean_files = read_stage(out, "clean", ["households.parquet", "persons.parquet"])
    households = pd.read_parquet(clean_files["households.parquet"])
    persons = pd.read_parquet(clean_files["persons.parquet"])
    sample_design = _read_input(inputs.sample_design, "sample design")
    frame = _read_input(inputs.frame / "population_frame.csv", "population frame")
    built = weighting.build_weights(
        households,
        persons,
        sample_design,
        frame,
        composition=weighting.read_composition(inputs.frame),
        trim_max_ratio=trim_max_ratio,
        replicates=replicates,
        seed=seed,
    )
    with publishing(out, "weights") as tmp, aside() as write:
        write(_write_replicates, built.person_replicates, tmp / "person_replicates.parquet")  # the largest
        _write_replicates(built.household_replicates, tmp / "household_replicates.parquet")
        built.households.to_parquet(tmp / "households.parquet", index=False)
        built.persons.to_parquet(tmp / "persons.parquet", index=False)
        built.diagnostics.to_csv(tmp / "diagnostics.csv", index=False)
    drawn = save_figures(
        _weight_figures,
        fig_dir,
        ("weight_distribution",),
        background,
        lambda: {
            "persons": pd.read_parquet(out / "weights" / "persons.parquet"),
            "labels": _labels(lang),
            "note": data_note(out),
        },
    )
    classes = weighting.nonresponse_classes(households, sample_design)
    return WeightsStage(built, classes, out / "weights", drawn)


def _read_input(path: Path, what: str) -> pd.DataFrame:
    if not Path(path).is_file():
        raise AnalysisError(
            f"{what} file not found",
            file=str(path),
            hint="--frame names the folder of population_frame.csv, --design the sample design CSV",
        )
    return pd.read_csv(path)


def calibration_margins(diagnostics: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The frame totals the weights stage raked to (``diagnostics.csv``, section ``margin``, stage ``frame``),
    by raking variable and category, in the order the weights stage used."""
    rows = diagnostics[(diagnostics["section"] == "margin") & (diagnostics["stage"] == "frame")]
    if rows.empty:
        raise AnalysisError(
            "the weights stage's diagnostics hold no frame margins",
            file="weights/diagnostics.csv",
            hint="rerun the weights stage",
        )
    return {
        variable: dict(zip(group["category"].astype(str), group["value"].astype(float)))
        for variable, group in rows.groupby("variable", sort=False)
    }


# ----- 03 demand --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemandStage:
    """The demand estimates (:class:`analysis.demand.DemandRun`), the definitions and threshold used, where
    they were written, and the figures."""

    run: object
    model: object  # analysis.sae.CunjuFit: model-based 村居 estimates
    definitions: dict
    threshold: int
    folder: Path
    figures: Mapping[str, list[Path]]

    def drivers_with_range(self) -> pd.DataFrame:
        """The staffing drivers with the 2.5th and 97.5th percentiles over the replicate weights."""
        reps = self.run.drivers_replicates.groupby(["team", "driver"], sort=False)["estimate"]
        spread = (
            reps.quantile([0.025, 0.975]).unstack().rename(columns={0.025: "rep_p2_5", 0.975: "rep_p97_5"})
        )
        return self.run.drivers.merge(spread.reset_index(), on=["team", "driver"])

    def needs_table(self) -> pd.DataFrame:
        """The need definitions in use, one row per team (needs.yaml)."""
        from analysis.demand import universe_text

        return pd.DataFrame(
            [
                {
                    "team": team,
                    "unit": spec["unit"],
                    "target group": universe_text(spec),
                    "in need if any of": ", ".join(spec["in_need_if_any"]),
                    "services": ", ".join(spec["services"]),
                }
                for team, spec in self.definitions["teams"].items()
            ]
        )


DEMAND_FILES = [
    "results.csv",
    "drivers.csv",
    "drivers_replicates.parquet",
    "precision.csv",
    "services_ranked.csv",
    "cunju_sample.csv",
    "cunju_model.csv",
    "cunju_model_fit.csv",
]
# the slowest figures first: the figure worker starts them as soon as the demand stage ends, and the quick
# ones left in its queue are drawn in this process once the last stage is done (drawing.BackgroundFigures)
DEMAND_FIGURES = ("demand_by_cunju", "cunju_shrinkage", "demand_by_team", "top_services", "unmet_need")


def demand(
    out: str | Path,
    form: str | Path = Inputs().form,
    lang: str = "zh",
    fig_dir: str | Path | None = ROOT / "figures",
    needs: str | Path = config.NEEDS_PATH,
    assumptions: str | Path = config.ASSUMPTIONS_PATH,
    frame: str | Path = Inputs().frame,
    background: BackgroundFigures | None = None,
) -> DemandStage:
    """Stage 03: every estimate of the need definitions from the weights stage's tables, suppressed below the
    leadership threshold; model-based 村居 estimates of each team's headline prevalence (:mod:`analysis.sae`,
    covariates from the population ``frame`` folder) as rows with ``method`` "fh" (all others "direct");
    the staffing drivers over the replicate weights; writes ``demand/`` and draws the demand figures
    (service and 村居 names from the ``form``'s choice labels)."""
    from analysis import demand as estimation
    from analysis import sae
    from analysis.instrument import load_form

    out = Path(out)
    files = read_stage(out, "weights", WEIGHT_FILES)
    definitions = config.load_needs(needs)
    threshold = disclosure.thresholds(config.load_assumptions(assumptions))["leadership"]
    run = estimation.run_demand(
        pd.read_parquet(files["households.parquet"]),
        pd.read_parquet(files["persons.parquet"]),
        calibration_margins(pd.read_csv(files["diagnostics.csv"])),
        definitions,
        files["person_replicates.parquet"],  # read once the estimates are done (625 MB at 150,000 households)
        threshold=threshold,
    )
    model = sae.fit_cunju(
        run.estimates, _read_input(Path(frame) / "population_frame.csv", "population frame"), definitions
    )
    with publishing(out, "demand") as tmp:
        sae.with_model_rows(run.results, model.rows).to_csv(tmp / "results.csv", index=False)
        model.areas.to_csv(tmp / "cunju_model.csv", index=False)
        model.models.to_csv(tmp / "cunju_model_fit.csv", index=False)
        run.drivers.to_csv(tmp / "drivers.csv", index=False)
        run.drivers_replicates.to_parquet(tmp / "drivers_replicates.parquet", index=False)
        run.precision.to_csv(tmp / "precision.csv", index=False)
        run.ranked.to_csv(tmp / "services_ranked.csv", index=False)
        run.cunju_sample.to_csv(tmp / "cunju_sample.csv", index=False)
    drawn = save_figures(
        _stage_figures,
        fig_dir,
        DEMAND_FIGURES,
        background,
        lambda: {
            "outputs": {
                "results": pd.read_csv(
                    out / "demand" / "results.csv", dtype={"group_value": str, "value": str}
                ),
                "cunju_model": model.areas,
            },
            "labels": _labels(lang, load_form(form), needs=definitions),
            "note": data_note(out),
            "threshold": threshold,
        },
    )
    return DemandStage(run, model, definitions, threshold, out / "demand", drawn)


# ----- 04 staffing ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffingStage:
    """The sizing chain at the point estimate and on every replicate, the sensitivity analysis, the
    sentence for leaders, and where the tables were written."""

    assumptions: dict
    point: dict
    replicates: dict
    summary: dict
    sensitivity: pd.DataFrame
    breaks: pd.DataFrame
    sentences: dict
    tables: dict
    folder: Path
    figures: Mapping[str, list[Path]] = field(default_factory=dict)

    def methods(self) -> pd.DataFrame:
        """Social workers per team under every apportionment method (the default one is in
        ``social_workers``)."""
        allocation = self.tables["allocation"].set_index("team")
        columns = [c for c in allocation.columns if c.startswith("social_workers_")]
        return allocation[columns].rename(columns=lambda c: c.removeprefix("social_workers_"))


STAFFING_FIGURES = ("staffing_vs_even", "sensitivity_tornado")


def staffing(
    out: str | Path,
    lang: str = "zh",
    fig_dir: str | Path | None = ROOT / "figures",
    needs: str | Path = config.NEEDS_PATH,
    assumptions: str | Path = config.ASSUMPTIONS_PATH,
    break_even_keys: int = BREAK_EVEN_KEYS,
    background: BackgroundFigures | None = None,
) -> StaffingStage:
    """Stage 04: WISN workload, required social workers and the apportionment of the plan's posts, on the
    drivers and on every replicate; tornado and break-even values; writes ``staffing/`` (tables and
    ``conclusion.json``) and draws the staffing figures."""
    from analysis import staffing as sizing

    out = Path(out)
    files = read_stage(out, "demand", ["drivers.csv", "drivers_replicates.parquet"])
    definitions = config.load_needs(needs)
    plan = config.load_assumptions(assumptions, definitions)
    drivers = pd.read_csv(files["drivers.csv"])
    unknown = sorted(set(drivers["team"]) ^ set(definitions["teams"]))
    if unknown:
        raise AnalysisError(
            f"the demand stage's drivers and needs.yaml name different teams ({unknown})",
            file=str(files["drivers.csv"]),
            column="team",
            hint="rerun the demand stage",
        )
    point = sizing.run_chain(drivers, plan)
    replicated = sizing.run_chain(pd.read_parquet(files["drivers_replicates.parquet"]), plan)
    summary = sizing.replicate_summary(replicated["allocation"], plan)
    sensitivity = sizing.tornado(point["demand"], plan)
    breaks = sizing.break_evens(
        point["demand"], plan, keys=sensitivity["assumption"].head(break_even_keys).tolist()
    )
    sentences = {
        language: sizing.leader_sentence(point["allocation"], summary, plan, language, needs=definitions)
        for language in ("zh", "en")
    }
    tables = sizing.staffing_tables(point, replicated, sensitivity, breaks, plan)
    with publishing(out, "staffing") as tmp:
        sizing.write_tables(tables, tmp)
        (tmp / "conclusion.json").write_text(
            json.dumps(sentences, ensure_ascii=False, indent=1), encoding="utf-8"
        )
    drawn = save_figures(
        _stage_figures,
        fig_dir,
        STAFFING_FIGURES,
        background,
        lambda: {
            "outputs": {
                name: pd.read_csv(out / "staffing" / f"{name}.csv")
                for name in ("allocation", "replicate_allocations", "sensitivity")
            },
            "labels": _labels(lang, needs=definitions),
            "note": data_note(out),
        },
    )
    return StaffingStage(
        plan, point, replicated, summary, sensitivity, breaks, sentences, tables, out / "staffing", drawn
    )


# ----- 05 brief ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BriefStage:
    """The numbers on the brief and the files written (``pdf`` None when Chromium is not installed)."""

    numbers: dict
    written: dict


def brief(
    out: str | Path,
    form: str | Path = Inputs().form,
    needs: str | Path = config.NEEDS_PATH,
    assumptions: str | Path = config.ASSUMPTIONS_PATH,
) -> BriefStage:
    """Stage 05: the one-page brief (HTML, and PDF when Chromium is installed) from the earlier stages'
    files."""
    from analysis import brief as leadership
    from analysis import figures
    from analysis.instrument import load_form

    out = Path(out)
    outputs = figures.read_outputs(out)
    threshold = disclosure.thresholds(config.load_assumptions(assumptions))["leadership"]
    with publishing(out, "brief") as tmp:
        drafted = leadership.build(
            outputs, load_form(form), tmp, threshold=threshold, needs=config.load_needs(needs)
        )
    written = {kind: (None if path is None else out / "brief" / path.name) for kind, path in drafted.items()}
    numbers = leadership.key_numbers(
        outputs["results"], outputs["allocation"], outputs["replicate_allocations"]
    )
    return BriefStage(numbers, written)


# ----- the whole run ----------------------------------------------------------------------------------------


def run_stages(
    out: str | Path,
    inputs: Inputs = Inputs(),
    lang: str = "zh",
    fig_dir: str | Path | None = ROOT / "figures",
    stages: tuple[str, ...] = STAGES,
    progress: Callable[[str], None] | None = None,
    cache: bool = False,
    background_figures: bool = False,
) -> dict:
    """Run ``stages`` in order (each reads what the previous one wrote); returns their results by name.

    ``progress`` receives "[n/N] <stage> ..." and "<stage> done in <s> s" lines (the CLI prints them; a
    terminal or notebook also sees the seconds so far and the time left, :mod:`analysis.progress`).
    With ``cache``, a stage whose inputs and outputs are as its last run recorded
    (:mod:`analysis.stage_cache`) is skipped, and its result is None. With ``background_figures``, the
    figures are drawn in a worker process while the next stages run (:mod:`analysis.drawing`; the same
    files), and the run returns when they are written.
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise AnalysisError(f"unknown stage '{unknown[0]}'", hint=f"stages: {', '.join(STAGES)}")
    drawn_aside = background_figures and fig_dir is not None
    with BackgroundFigures() if drawn_aside else contextlib.nullcontext() as pool:
        return _run(Path(out), inputs, lang, fig_dir, stages, progress, cache, pool)


def _run(out, inputs, lang, fig_dir, stages, progress, cache, pool: BackgroundFigures | None) -> dict:
    """:func:`run_stages`' loop; each stage's cache record is written once its figures are."""
    from analysis import stage_cache
    from analysis.progress import StageProgress

    calls = {
        "clean": lambda: clean(out, inputs, lang, fig_dir, background=pool),
        "weights": lambda: weights(out, inputs, lang, fig_dir, background=pool),
        "demand": lambda: demand(out, inputs.form, lang, fig_dir, frame=inputs.frame, background=pool),
        "staffing": lambda: staffing(out, lang, fig_dir, background=pool),
        "brief": lambda: brief(out, inputs.form),
    }
    code = stage_cache.code_fingerprint() if cache else ""
    done, records = {}, []
    try:
        for number, stage in enumerate(stages, start=1):
            label = f"[{number}/{len(stages)}] {stage}"
            wanted = {}
            if cache:
                wanted = stage_cache.stage_inputs(
                    stage, out, inputs, {"lang": lang, "figures": str(fig_dir)}, code
                )
                if stage_cache.is_current(out, stage, wanted):
                    done[stage] = None
                    if progress:
                        progress(f"{label}: inputs unchanged since the last run, skipped")
                    continue
                stage_cache.forget(out, stage)
            rows = _households(out) if stage != "clean" else None
            _, _, last_seconds, last_rows = stage_cache.read_record(out, stage)
            scale = rows / last_rows if rows and last_rows else 1
            expected = last_seconds * scale if last_seconds else None
            with StageProgress(label, rows, expected) as shown:
                try:
                    done[stage] = calls[stage]()
                except AnalysisError as error:
                    error.stage = stage  # the CLI names the stage that stopped
                    raise
            if stage == "clean":
                shown.rows = _households(out)
            if progress:
                progress(shown.done_text())
            records.append((stage, wanted, shown.seconds, shown.rows))
    except Exception:  # the stages that finished keep their figures and records
        _settle(out, pool, done, records, cache, progress=None, quiet=True)
        raise
    _settle(out, pool, done, records, cache, progress, quiet=False)
    return done


def _settle(out: Path, pool, done: dict, records: list, cache: bool, progress, quiet: bool) -> None:
    """Wait for the finished stages' figures (drawing here those the worker has not started) and write each
    stage's cache record once its figures are written. A figure's input error is raised as its stage's,
    unless ``quiet`` (another error is already on its way)."""
    from analysis import stage_cache

    started = time.perf_counter()
    if pool is not None:
        pool.finish()
    for stage, wanted, seconds, rows in records:
        try:
            written = [path for paths in getattr(done[stage], "figures", {}).values() for path in paths]
        except Exception as error:
            if quiet:
                continue
            if isinstance(error, AnalysisError):
                error.stage = stage
            raise
        if cache:
            if stage == "clean":
                written.append(out / "DATA_SOURCE.txt")
            stage_cache.write_record(
                out, stage, wanted, stage_cache.stage_outputs(out, stage, written), seconds, rows
            )
    if pool is not None and progress:
        progress(f"figures written {time.perf_counter() - started:.1f} s after the last stage")


def _households(out: Path) -> int | None:
    """Clean households in ``out`` (from the Parquet footer, nothing read), None before the clean stage."""
    import pyarrow.parquet as pq

    path = out / "clean" / "households.parquet"
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else None
