"""A later survey wave: the same synthetic Leliu a year on, with a planted change in the centre's reach.

- :func:`advance` — the population one year later: everyone a year older, deaths, births, households
  leaving and arriving (migrant turnover), at the rates of ``simulation.yaml`` (``waves.<year>``). Persons
  and households keep their keys, so they answer as before (keyed draws) unless their age or members
  changed; receiving given need and awareness of the centre move to the wave's ``reach`` rates.
- :class:`Panel` / :meth:`Panel.draw_pair` — many pairs of samples of the two waves in memory (clean
  tables, designs, frames and the planted change), for coverage tests; :func:`draw_pair` for one.
- :func:`write_wave_survey` — the later wave as a survey folder (``python -m analysis simulate --wave``),
  revisiting the first wave's residential groups by default or drawing fresh ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import ConfigError
from analysis.simulate.params import PARAMS_FILE
from analysis.simulate.population import (
    HOUSEHOLD_STRUCTURE,
    PERSON_STRUCTURE,
    Population,
    _compose,
    build_population,
    complete,
    draw_housing,
    elderly_households,
    population_frame,
)
from analysis.simulate.sample import Sample, draw_sample, sample_params
from analysis.simulate.truth import truth, truth_change


def wave_seed(seed: int, year: int, step: int) -> int:
    """The seed of one random step of a later wave (0 population change, 1 sample, 2 records)."""
    return int(np.random.SeedSequence([seed, year, step]).generate_state(1)[0])


def wave_params(params: dict, year: int) -> dict:
    """``waves.<year>`` of the simulation parameters; ConfigError naming the key when absent."""
    spec = (params.get("waves") or {}).get(year)
    if spec is None:
        raise ConfigError(
            f"no parameters for wave {year}",
            file=str(PARAMS_FILE),
            column=f"waves.{year}",
            hint=f"waves defined: {sorted(params.get('waves') or {})}",
        )
    return spec


def _new_ids(prefix_numbers: np.ndarray, start: int) -> np.ndarray:
    return np.char.add("h", np.char.zfill((start + prefix_numbers).astype(str), 7))


def _arrivals(
    rng, households: pd.DataFrame, p: dict, counts: dict[str, int], next_number: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """New households of each origin (composition as in simulation.yaml), placed in residential groups in
    proportion to the group's households of the same origin, with new ids from ``next_number``."""
    hh_parts, person_parts = [], []
    for origin, types in (("local", "local_types"), ("migrant", "migrant_types")):
        if counts[origin] == 0:
            continue
        new_hh, new_p = _compose(rng, counts[origin], p["households"][types], p)
        same = households[households["origin"] == origin]
        places = (
            same.groupby("psu", observed=True)
            .agg(cunju=("cunju", "first"), group_key=("group_key", "first"), n=("household_id", "size"))
            .reset_index()
        )
        pick = rng.choice(len(places), size=len(new_hh), p=(places["n"] / places["n"].sum()).to_numpy())
        ids = _new_ids(new_hh["hh"].to_numpy(), next_number)
        next_number += len(new_hh)
        hh_parts.append(
            pd.DataFrame(
                {
                    "household_id": ids,
                    "hh_type": new_hh["hh_type"].to_numpy(),
                    "origin": origin,
                    "cunju": places["cunju"].to_numpy()[pick].astype(str),
                    "psu": places["psu"].to_numpy()[pick].astype(str),
                    "group_key": places["group_key"].to_numpy()[pick],
                }
            )
        )
        position = new_p.groupby("hh").cumcount() + 1
        person_parts.append(
            pd.DataFrame(
                {
                    "household_id": ids[new_p["hh"].to_numpy()],
                    "person_id": np.char.add(
                        np.char.add(ids[new_p["hh"].to_numpy()], "-"),
                        np.char.zfill(position.astype(str).to_numpy().astype(str), 2),
                    ),
                    "relation": new_p["relation"].to_numpy(),
                    "age": new_p["age"].to_numpy(),
                    "sex": np.where(new_p["sex"].to_numpy() == 1, "female", "male"),
                    "registration": np.where(new_p["local"].to_numpy(), "local", "nonlocal"),
                }
            )
        )
    if not hh_parts:
        return pd.DataFrame(columns=HOUSEHOLD_STRUCTURE[:-1]), pd.DataFrame(columns=PERSON_STRUCTURE)
    return pd.concat(hh_parts, ignore_index=True), pd.concat(person_parts, ignore_index=True)


def advance(population: Population, year: int | None = None) -> Population:
    """The population of ``year`` (default: the next year) from ``population``, at the rates of
    ``waves.<year>`` in its parameters; deterministic in the population's seed and the year.

    Order within the year: households leave; persons age a year and some die (a household whose members
    all died is gone); women aged 20–39 heading a household or married to its head give birth (a child
    aged 0, registered as the mother); new households arrive. The wave's interviews start on its
    ``interview_first_day``.
    """
    year = population.year + 1 if year is None else year
    if year <= population.year:
        raise ValueError(f"wave {year} is not after the population's year {population.year}")
    spec = wave_params(population.params, year)
    if year > population.year + 1:
        population = advance(population, year - 1)
    p = population.params
    rng = np.random.default_rng(wave_seed(population.seed, year, 0))
    households = population.households[HOUSEHOLD_STRUCTURE].copy()
    for column in ("hh_type", "origin", "cunju", "psu", "housing"):
        households[column] = households[column].astype(str)
    persons = population.persons[PERSON_STRUCTURE].copy()
    for column in ("relation", "sex", "registration"):
        persons[column] = persons[column].astype(str)
    # a baby gets the next roster position after everyone listed at the start of the year (the dead
    # included), so it never takes over the keyed answers of a member who died
    last = persons.groupby("household_id")["person_id"].max().str[-2:].astype(int)
    n_start = {origin: int((households["origin"] == origin).sum()) for origin in ("local", "migrant")}

    leave = rng.random(len(households)) < households["origin"].map(spec["leaving"]).to_numpy(dtype=float)
    households = households[~leave]
    persons = persons[persons["household_id"].isin(households["household_id"])]
    persons = persons.assign(age=persons["age"].to_numpy().astype(np.int16) + 1)
    mortality = spec["mortality"]
    q = np.asarray(mortality["rate"])[
        np.searchsorted(mortality["age_breaks"], persons["age"] - 1, side="right") - 1
    ]
    persons = persons[rng.random(len(persons)) >= q]
    households = households[households["household_id"].isin(persons["household_id"])]

    mothers = persons[
        (persons["sex"] == "female")
        & persons["age"].between(20, 39)
        & persons["relation"].isin(["head", "spouse"])
    ]
    mothers = mothers[rng.random(len(mothers)) < spec["births_per_woman"]].drop_duplicates("household_id")
    babies = pd.DataFrame(
        {
            "household_id": mothers["household_id"].to_numpy(),
            "person_id": (
                mothers["household_id"]
                + "-"
                + (mothers["household_id"].map(last) + 1).astype(str).str.zfill(2)
            ).to_numpy(),
            "relation": "child",
            "age": np.zeros(len(mothers), dtype=np.int16),
            "sex": np.where(
                rng.random(len(mothers)) < p["households"]["female_share"]["children"], "female", "male"
            ),
            "registration": mothers["registration"].to_numpy(),
        }
    )

    arriving = {origin: round(spec["arriving"][origin] * n_start[origin]) for origin in n_start}
    next_number = int(population.households["household_id"].str[1:].astype(int).max()) + 1
    new_hh, new_persons = _arrivals(rng, households, p, arriving, next_number)
    new_hh = new_hh.assign(housing=draw_housing(rng, new_hh, p))
    households = pd.concat([households, new_hh[HOUSEHOLD_STRUCTURE]], ignore_index=True)
    households = households.sort_values(["cunju", "psu", "household_id"], kind="stable").reset_index(
        drop=True
    )
    persons = pd.concat([persons, babies, new_persons], ignore_index=True)
    order = pd.Series(np.arange(len(households)), index=households["household_id"].to_numpy())
    persons = persons.assign(_row=persons["household_id"].map(order).to_numpy())
    persons = persons.sort_values(["_row", "person_id"], kind="stable").drop(columns="_row")
    return complete(
        population.seed,
        households,
        persons,
        p,
        population.services,
        population.scale,
        year,
        wave=spec["reach"],
    )


@dataclass
class WavePair:
    """Samples of two waves of one population: each a :class:`~analysis.simulate.sample.Sample` (fault-free
    clean tables, design with ``p_psu``/``p_hh``, issued households); ``frames`` the population frame of each
    wave's year and ``compositions`` its persons by elderly household (both for raking); ``truth`` the planted
    values and change (:func:`truth_change`); ``fresh_psus`` whether the second wave drew new residential
    groups."""

    first: Sample
    second: Sample
    frames: dict[int, pd.DataFrame]
    compositions: dict[int, pd.DataFrame]
    truth: pd.DataFrame
    years: tuple[int, int]
    fresh_psus: bool


class Panel:
    """Two waves of one synthetic Leliu: ``first`` (the given population) and ``second`` (a year on, or
    ``year``). Build once, then draw many sample pairs quickly with :meth:`draw_pair`."""

    def __init__(self, population: Population, year: int | None = None):
        self.first = population
        self.second = advance(population, year)
        self.years = (population.year, self.second.year)

    @cached_property
    def frames(self) -> dict[int, pd.DataFrame]:
        return {self.years[0]: population_frame(self.first), self.years[1]: population_frame(self.second)}

    @cached_property
    def compositions(self) -> dict[int, pd.DataFrame]:
        return {self.years[0]: elderly_households(self.first), self.years[1]: elderly_households(self.second)}

    @cached_property
    def truth(self) -> pd.DataFrame:
        return truth_change(truth(self.first), truth(self.second), self.years)

    def draw_pair(self, seed: int, fresh_psus: bool = False) -> WavePair:
        """A sample of each wave, drawn with ``seed``: the second revisits the first's residential groups
        (fresh households in each) unless ``fresh_psus``."""
        first = draw_sample(self.first, seed)
        second = draw_sample(
            self.second, wave_seed(seed, self.years[1], 1), psus=None if fresh_psus else first.design
        )
        return WavePair(
            first=first,
            second=second,
            frames=self.frames,
            compositions=self.compositions,
            truth=self.truth,
            years=self.years,
            fresh_psus=fresh_psus,
        )


def draw_pair(population: Population, seed: int, fresh_psus: bool = False) -> WavePair:
    """One pair of samples (see :meth:`Panel.draw_pair`); for many pairs build a :class:`Panel` once."""
    return Panel(population).draw_pair(seed, fresh_psus)


def write_wave_survey(
    seed: int,
    year: int,
    out_dir: str | Path,
    fresh_psus: bool = False,
    n_households: int | None = None,
    scale: float = 1.0,
    form_path: str | Path | None = None,
    formats: tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """The ``year`` wave of the survey that ``write_survey(seed, ...)`` writes for the first wave, as a
    survey folder under ``out_dir`` (same layout), plus ``simulation/truth_change.csv`` (both waves'
    planted values and the change). The second wave revisits the first wave's residential groups unless
    ``fresh_psus``."""
    from analysis.simulate.write import EXPORT_FORMATS, write_wave

    first = build_population(seed, scale=scale)
    first.params = sample_params(first.params, n_households, len(first.groups))
    first_sample = draw_sample(first, seed + 1)
    second = advance(first, year)
    second_sample = draw_sample(
        second, wave_seed(seed, year, 1), psus=None if fresh_psus else first_sample.design
    )
    second_truth = truth(second)
    change = truth_change(truth(first), second_truth, (first.year, year))
    extra = {"wave": year, "first_wave": first.year, "psus": "fresh" if fresh_psus else "revisited"}
    return write_wave(
        second,
        second_sample,
        seed,
        out_dir,
        second_truth,
        form_path=form_path,
        formats=formats or EXPORT_FORMATS,
        extra={"truth_change": change},
        provenance_extra=extra,
        records_seed=wave_seed(seed, year, 2),
    )
