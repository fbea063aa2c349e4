"""The annual evaluation: two waves of the resident survey, each weighted to its own frame, compared in
one stacked design, so that residential groups visited in both waves carry their covariance.

Indicators (named as the simulator's planted truth, ``analysis/simulate/truth.py``), per team of
``analysis/needs.yaml`` and for the centre:

- ``reach_<team>``: of those in need of the team (``in_need_<team>``: residents, households for a
  household team), the share whose household receives any of the team's services;
- ``unmet_<team>``: the share of the team's target population in need and receiving none of them;
- ``need_any_<team>``: stated demand, the share of households naming any of the team's services
  (``need_<team>``, "other" included);
- ``aware_centre`` (team ``centre``): the share of households that know the centre.

Each is a ratio of weighted totals on the person table; household answers enter as y_h / m_h over
1 / m_h (m_h members on the roster), the identity ``analysis/demand.py`` uses, so one calibrated
person design serves every indicator.

Stacking (:func:`stack_waves`): both waves' person tables one under the other with a ``wave`` column.
When the second wave revisited the first wave's residential groups, a group keeps one PSU id in both
waves and the strata are the 村居, so its two contributions fall in one PSU total and the covariance
of the two estimates is counted (R ``svyby(covmat=TRUE)`` then ``svycontrast``); below the group, each
wave's households are a stage of their own, taken with certainty, then drawn afresh (fpc: the
group's households that year). When the second wave drew its groups afresh, the waves are
independent samples: each keeps its own strata and PSUs (no covariance: V = V1 + V2). Person
weights are raked to each wave's own frame (margins crossed with the wave), which reproduces each
wave's own raked weights, and the variance accounts for the raking.

The change of a ratio R = A / B: a row's Taylor influence is (a − R b) / B, so the SE of R₂ − R₁ is that
of the change in the total of this linearised variable (``Design.compare``, statistic "total") over
the stacked design; for b = 1 it equals compare's own mean (tested).

Layout: ``measures`` (the indicators as ratio columns; which a change of instrument leaves out),
``waves`` (a wave, stacking, the stacked design and its estimates), ``evaluation`` (the evaluation of two
waves: tidy table, suppression, the planted change), ``report`` (survey folders in; table, summary
paragraph and figure out: ``python -m analysis evaluate``).
"""

from analysis.evaluate.evaluation import (
    DOMAINS,
    TABLE_COLUMNS,
    Evaluation,
    against_truth,
    compare_waves,
    evaluate,
    suppress,
)
from analysis.evaluate.measures import CENTRE, aligned, asked, indicator_specs, indicator_table, left_out
from analysis.evaluate.report import (
    figure_note,
    find_export,
    read_wave,
    run_evaluation,
    summary,
    write_evaluation,
)
from analysis.evaluate.waves import (
    CHANGE,
    LEVEL,
    PSU_MODES,
    WAVE,
    Wave,
    estimate,
    linearised,
    psu_mode,
    stack_waves,
    stacked_design,
    weigh_wave,
)

__all__ = [
    "CENTRE",
    "CHANGE",
    "DOMAINS",
    "LEVEL",
    "PSU_MODES",
    "TABLE_COLUMNS",
    "WAVE",
    "Evaluation",
    "Wave",
    "against_truth",
    "aligned",
    "asked",
    "compare_waves",
    "estimate",
    "evaluate",
    "figure_note",
    "find_export",
    "indicator_specs",
    "indicator_table",
    "left_out",
    "linearised",
    "psu_mode",
    "read_wave",
    "run_evaluation",
    "stack_waves",
    "stacked_design",
    "summary",
    "suppress",
    "weigh_wave",
    "write_evaluation",
]
