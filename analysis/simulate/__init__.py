"""A synthetic Leliu: population, sample, raw exports with injected faults, and the planted truth.

No real Leliu microdata is public, so every downstream stage is tested against this generator. Every
parameter lives in ``analysis/simulation.yaml`` with its source (docs/sources.md) or marked as an
assumption; the teams and their service lines come from ``analysis/needs.yaml``.

- :mod:`~analysis.simulate.params` — parameters, teams, the instrument's field groups, age bands;
- :mod:`~analysis.simulate.population` — :func:`build_population` (households, 村居, residential groups)
  and :func:`population_frame`; :mod:`~analysis.simulate.needs` draws everyone's answers;
- :mod:`~analysis.simulate.sample` — :func:`draw_sample` (stratified two-stage, nonresponse) and
  :func:`clean_tables` (fault-free clean tables);
- :mod:`~analysis.simulate.truth` — :func:`truth`, finite-population values of every indicator;
- :mod:`~analysis.simulate.faults` — submissions with fake personal data, planted faults, manifest;
- :mod:`~analysis.simulate.exports` — the Kobo and 问卷星 writers (shared with the test fixtures);
- :mod:`~analysis.simulate.write` — :func:`write_survey`, one survey folder; same seed, same bytes;
- :mod:`~analysis.simulate.waves` — a later wave: :func:`~analysis.simulate.waves.advance` (a year on),
  :class:`~analysis.simulate.waves.Panel` (many sample pairs in memory), ``write_wave_survey``;
- :mod:`~analysis.simulate.calibration` — realised figures beside their targets, written into
  ``survey/README.md`` (``python -m analysis.simulate.calibration``).
"""

from analysis.simulate.exports import kobo_tables, wjx_table, write_kobo_csv, write_kobo_xlsx, write_wjx_csv
from analysis.simulate.faults import FAULT_KINDS
from analysis.simulate.params import AGE_BAND_LABELS, AGE_BANDS, age_band, load_params, team_services
from analysis.simulate.population import Population, build_population, elderly_households, population_frame
from analysis.simulate.sample import Sample, clean_tables, draw_sample
from analysis.simulate.truth import truth
from analysis.simulate.write import EXPORT_FORMATS, write_survey

__all__ = [
    "AGE_BANDS",
    "AGE_BAND_LABELS",
    "EXPORT_FORMATS",
    "FAULT_KINDS",
    "Population",
    "Sample",
    "age_band",
    "build_population",
    "clean_tables",
    "draw_sample",
    "elderly_households",
    "kobo_tables",
    "load_params",
    "population_frame",
    "team_services",
    "truth",
    "wjx_table",
    "write_kobo_csv",
    "write_kobo_xlsx",
    "write_survey",
    "write_wjx_csv",
]
