"""Design-based estimation: the survey design object and its estimators.

Mirrors R's ``survey`` package (Lumley; conventions of version 4.1-1, the reference values in
``tests/reference/survey_reference.json`` come from it): :class:`Design` is ``svydesign`` (strata,
one or more stages of clusters, fpc as population sizes or sampling fractions per stage),
:class:`ReplicateDesign` is ``svrepdesign`` / ``as.svrepdesign``. Every estimator is a ratio of
weighted totals, so the whole core is sums of per-row contributions reduced with group sums
(sparse indicator products) to PSU totals: no loop runs over rows, and the same sums map onto partitioned
data.

Conventions (as R ``survey``):

- Taylor linearisation; without fpc, with-replacement (ultimate cluster) variance; with fpc at every
  stage, each later stage adds its own term weighted by the earlier sampling fractions.
- Domains (``by=``) keep the full design: rows outside the domain contribute zero. With
  ``na_rm=True`` missing values are out of the domain. As ``svyby`` on an uncalibrated design, strata
  without any domain row are left out of the lonely-PSU rules; a calibrated design keeps them all.
- Degrees of freedom (the ``df`` column) = PSUs − strata among the rows of the domain with positive
  weight (``degf`` of the domain's subset); replicate designs: rank of the replicate weights − 1.
- Intervals (all rules in :mod:`analysis.survey.intervals`): means, totals and ratios get
  estimate ± quantile × SE (``confint``); proportions ``ci="logit"`` (default) or ``"beta"``
  (``svyciprop``) or ``"wald"``; quantiles Woodruff's interval (``svyquantile``,
  ``interval.type="mean"``, ``qrule="math"`` or ``"school"``). ``df=`` chooses the quantile:
  ``"z"`` (normal), ``"design"`` (the whole design's df, ``confint(df=degf(design))``, srvyr),
  ``"domain"`` (the domain's df) or a number. Defaults are R's: z for means, totals, ratios and
  Wald proportions; the domain's df for logit/beta proportions and quantiles.
- select_multiple questions: ``proportion(question, options=[0/1 columns], respondents=...)``, the
  share choosing each option among the question's respondents (``svymean`` on their subset).
- Ratios take analysistools' missing-value options ``numerator_na_to_0`` and ``filter_denominator_0``.
- Change between waves: ``compare(variable, by="wave", first=, second=)`` on one design holding
  both waves (``svyby(covmat=TRUE)`` then ``svycontrast``); units in both waves carry their covariance.
- Design effects as ``deff=TRUE``: variance over that of a without-replacement SRS of the same size.
- Post-stratification, raking and linear (GREG) calibration return a new design whose variance
  accounts for the calibration (residuals as ``postStratify``/``rake``/``calibrate``); replicate
  designs recalibrate every replicate (R's ``rake`` rakes replicates in lock step with the sample).
  ``rake(tol=)`` is relative to Σ weights (R ``control$epsilon < 1``); unlike R, failing to
  converge, an empty margin cell or margins no weights can meet raise :class:`DesignError`.
- Lonely PSUs: ``lonely_psu`` = fail (default, error naming the stratum), remove, certainty (both add
  no variance, as in R's code), adjust (centre on zero, i.e. the grand mean), average (mean of the
  other strata); replicate jackknives follow R's ``jknweights`` for each rule.
- Replicates: ``replicate("JK1"|"JKn"|"bootstrap")``. The bootstrap is Rao–Wu's rescaling bootstrap
  (n_h − 1 PSUs drawn with replacement), which is R's ``type="subbootstrap"``; R's
  ``type="bootstrap"`` (Canty–Davison, n_h draws) is not provided. Variance = scale × Σ rscales ×
  (θ_r − mean θ_r)², or around θ with ``mse=True`` (``svrVar``).
- Quirks kept for agreement: ``svyciprop(method="beta")`` counts all rows of a calibrated design as
  its n; ``svyquantile`` uses the df of the domain after removing missing values.

Results are tidy DataFrames: the ``by`` columns, ``variable`` (and ``level`` or ``quantile``), then
``estimate, se, ci_low, ci_high, df, deff, n`` (n = rows of the domain used). For replicate-weight
work downstream: :meth:`ReplicateDesign.replicate_weights` (n × R array),
:meth:`ReplicateDesign.replicate_totals` (W.T @ y without forming W) and
:meth:`ReplicateDesign.replicate_variance`.

Layout (after R ``survey``'s files): ``design`` (svydesign: structure, fpc, lonely PSUs, degf),
``variance`` (multistage Taylor variance, svrVar), ``estimators`` (mean, total, ratio, proportion,
domains), ``quantile`` (svyquantile), ``intervals`` (every interval rule), ``calibration``
(postStratify, rake, calibrate), ``replicates`` (svrepdesign: JK1, JKn, Rao–Wu bootstrap),
``compare`` (svycontrast of two waves);
``columns`` and ``groups`` hold the column layout and the group sums they all share.
"""

from analysis.survey.design import LONELY_PSU, Design
from analysis.survey.estimators import RESULT_COLUMNS
from analysis.survey.intervals import beta_interval, logit_interval
from analysis.survey.replicates import ReplicateDesign

__all__ = ["LONELY_PSU", "RESULT_COLUMNS", "Design", "ReplicateDesign", "beta_interval", "logit_interval"]
