"""One simulated survey folder on disk: raw exports, frame, planted truth, fault manifest, provenance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.simulate.exports import kobo_tables, wjx_table, write_kobo_csv, write_kobo_xlsx, write_wjx_csv
from analysis.simulate.faults import inject_faults, submissions
from analysis.simulate.population import Population, build_population, elderly_households, population_frame
from analysis.simulate.sample import Sample, draw_sample, sample_params
from analysis.simulate.truth import truth

ROOT = Path(__file__).resolve().parents[2]
EXPORT_FORMATS = ("kobo_xlsx", "kobo_csv", "wjx")
NOTE = "SIMULATED DATA: generated from public population figures and assumptions; not real Leliu responses."


def write_survey(
    seed: int,
    out_dir: str | Path,
    n_households: int | None = None,
    scale: float = 1.0,
    form_path: str | Path | None = None,
    formats: tuple[str, ...] = EXPORT_FORMATS,
) -> dict[str, Path]:
    """Simulate the survey with ``seed`` and write every file under ``out_dir`` (docs/contracts.md layout):

    raw/kobo/leliu_needs_survey.xlsx (``formats`` "kobo_xlsx"), raw/kobo/leliu_needs.csv and roster.csv (UTF-8
    with BOM; "kobo_csv"), raw/wjx/leliu_needs_wjx.csv (GB18030; "wjx"), raw/PROVENANCE.json, frame/cunju.csv,
    frame/population_frame.csv, frame/elderly_households.csv, frame/sample_design.csv, simulation/truth.csv,
    simulation/faults.csv. Same seed -> identical bytes. ``n_households`` ≈ responding households (default:
    simulation.yaml), ``scale`` shrinks or grows the population.
    """
    population = build_population(seed, scale=scale)
    population.params = sample_params(population.params, n_households, len(population.groups))
    sample = draw_sample(population, seed + 1)
    return write_wave(
        population, sample, seed, out_dir, truth(population), form_path=form_path, formats=formats
    )


def write_wave(
    population: Population,
    sample: Sample,
    seed: int,
    out_dir: str | Path,
    truth_table: pd.DataFrame,
    form_path: str | Path | None = None,
    formats: tuple[str, ...] = EXPORT_FORMATS,
    extra: dict[str, pd.DataFrame] | None = None,
    provenance_extra: dict | None = None,
    records_seed: int | None = None,
) -> dict[str, Path]:
    """Write one drawn sample of ``population`` as a survey folder (see :func:`write_survey`): records and
    faults are drawn with ``records_seed`` (default ``seed + 2``). ``extra`` maps names to tables written as
    ``simulation/<name>.csv``; ``provenance_extra`` adds keys to PROVENANCE.json."""
    from analysis import __version__
    from analysis.instrument import load_form

    unknown = set(formats) - set(EXPORT_FORMATS)
    if unknown:
        raise ValueError(f"unknown export formats {sorted(unknown)}; choose from {EXPORT_FORMATS}")
    out_dir = Path(out_dir)
    form = load_form(form_path or ROOT / "survey" / "instrument")
    rng = np.random.default_rng(seed + 2 if records_seed is None else records_seed)
    records, persons = submissions(sample, population, rng)
    records, persons, manifest = inject_faults(records, persons, population, rng, form)
    kobo_hh, kobo_roster = kobo_tables(records, persons, form)
    paths = {}
    if "kobo_xlsx" in formats:
        paths["kobo_xlsx"] = write_kobo_xlsx(
            kobo_hh, kobo_roster, form, out_dir / "raw" / "kobo" / "leliu_needs_survey.xlsx"
        )
    if "kobo_csv" in formats:
        paths["kobo_households"], paths["kobo_roster"] = write_kobo_csv(
            kobo_hh, kobo_roster, out_dir / "raw" / "kobo", form
        )
    if "wjx" in formats:
        paths["wjx"] = write_wjx_csv(
            wjx_table(kobo_hh, kobo_roster, form), out_dir / "raw" / "wjx" / "leliu_needs_wjx.csv"
        )
    tables = {
        "cunju": (population.cunju, out_dir / "frame" / "cunju.csv"),
        "population_frame": (population_frame(population), out_dir / "frame" / "population_frame.csv"),
        "elderly_households": (elderly_households(population), out_dir / "frame" / "elderly_households.csv"),
        "sample_design": (sample.design, out_dir / "frame" / "sample_design.csv"),
        "truth": (truth_table, out_dir / "simulation" / "truth.csv"),
        "faults": (manifest, out_dir / "simulation" / "faults.csv"),
        **{name: (table, out_dir / "simulation" / f"{name}.csv") for name, table in (extra or {}).items()},
    }
    for name, (table, path) in tables.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False, lineterminator="\n")
        paths[name] = path
    paths["provenance"] = out_dir / "raw" / "PROVENANCE.json"
    paths["provenance"].parent.mkdir(parents=True, exist_ok=True)
    provenance = {
        "simulated": True,
        "seed": seed,
        "generator": "analysis.simulate",
        "generator_version": __version__,
        "parameters": "analysis/simulation.yaml",
        "parameters_sha256": hashlib.sha256(
            json.dumps(population.params, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest(),
        "scale": population.scale,
        "residents": len(population.persons),
        "households": len(population.households),
        "households_issued": len(sample.issued),
        "households_responding": len(sample.households),
        "submissions": len(kobo_hh),
        **(provenance_extra or {}),
        "note": NOTE,
        "files": {
            name: hashlib.sha256(path.read_bytes()).hexdigest()
            for name, path in sorted(paths.items())
            if name != "provenance"
        },
    }
    paths["provenance"].write_text(
        json.dumps(provenance, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return paths
