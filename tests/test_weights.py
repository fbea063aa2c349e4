"""Weights follow the recorded design: base weights, nonresponse classes, trimming, age bands, margins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import weights
from analysis.errors import DesignError

SAMPLE_DESIGN = pd.DataFrame(
    {
        "cunju": ["c01", "c01", "c02", "c02"],
        "psu": ["c01-g01", "c01-g02", "c02-g01", "c02-g02"],
        "stratum_psus": [10, 10, 8, 8],
        "sampled_psus": [2, 2, 2, 2],
        "psu_households": [100, 50, 80, 80],
        "p_psu": [0.2, 0.2, 0.25, 0.25],
        "households_issued": [10, 10, 8, 8],
        "p_hh": [0.1, 0.2, 0.1, 0.1],
    }
)


def households_in(counts: dict[str, int]) -> pd.DataFrame:
    psus = [psu for psu, n in counts.items() for _ in range(n)]
    return pd.DataFrame(
        {"household_id": [f"h{i}" for i in range(len(psus))], "psu": psus, "cunju": [p[:3] for p in psus]}
    )


def test_base_weight_is_the_inverse_of_both_stage_probabilities():
    hh = households_in({"c01-g01": 2, "c01-g02": 1, "c02-g02": 1})
    np.testing.assert_allclose(weights.base_weights(hh, SAMPLE_DESIGN), [50, 50, 25, 40])


def test_base_weights_refuse_a_household_from_an_unsampled_psu():
    hh = households_in({"c01-g01": 1, "c09-g01": 1})
    with pytest.raises(DesignError, match="c09-g01"):
        weights.base_weights(hh, SAMPLE_DESIGN)


def test_nonresponse_restores_issued_households_within_each_psu():
    hh = households_in({"c01-g01": 5, "c01-g02": 10, "c02-g01": 4, "c02-g02": 8})
    factor = weights.nonresponse_factors(hh, SAMPLE_DESIGN, min_respondents=3)
    np.testing.assert_allclose(factor.groupby(hh["psu"]).first(), [2.0, 1.0, 2.0, 1.0])
    weighted = weights.base_weights(hh, SAMPLE_DESIGN) * factor
    # every PSU's responding households now carry the weight of all households issued there
    issued = SAMPLE_DESIGN.set_index("psu")
    expected = issued["households_issued"] / (issued["p_psu"] * issued["p_hh"])
    np.testing.assert_allclose(weighted.groupby(hh["psu"]).sum(), expected)


def test_psus_with_too_few_respondents_are_pooled_within_their_cunju():
    hh = households_in({"c01-g01": 2, "c01-g02": 2, "c02-g01": 1, "c02-g02": 1})
    classes = weights.nonresponse_classes(hh, SAMPLE_DESIGN, min_respondents=3).set_index("psu")["class"]
    assert classes["c01-g01"] == classes["c01-g02"] == "c01:pooled"
    assert classes["c02-g01"] == classes["c02-g02"] == "c02:all"
    factor = weights.nonresponse_factors(hh, SAMPLE_DESIGN, min_respondents=3)
    # the c02 class: 16 issued households, 2 responded, equal base weights
    np.testing.assert_allclose(factor[hh["cunju"] == "c02"], 8.0)
    # totals of the stratum still equal the issued households' base weight total
    weighted = weights.base_weights(hh, SAMPLE_DESIGN) * factor
    np.testing.assert_allclose(weighted[hh["cunju"] == "c02"].sum(), 16 * 40.0)


def test_a_cunju_with_no_respondent_cannot_be_weighted():
    hh = households_in({"c01-g01": 4})
    with pytest.raises(DesignError, match="no responding household"):
        weights.nonresponse_factors(hh, SAMPLE_DESIGN)


def test_trimming_caps_weights_and_keeps_each_group_total():
    w = pd.Series([1.0, 1.0, 1.0, 10.0, 2.0, 2.0, 2.0, 2.0])
    groups = pd.Series(["a"] * 4 + ["b"] * 4)
    trimmed = weights.trim_weights(w, groups, max_ratio=3.0)  # median 2 -> cap 6
    assert trimmed.max() <= 6.0 + 1e-12
    np.testing.assert_allclose(trimmed.groupby(groups).sum(), w.groupby(groups).sum())
    np.testing.assert_allclose(trimmed[:3], 1 + 4 / 3)
    assert weights.trim_weights(w, groups, None) is w


def test_age_bands_are_read_from_frame_labels():
    bands = weights.parse_age_bands(["15-24", "0-14", "80+", "25–59", "60-79"])
    assert bands["band"].tolist() == ["0-14", "15-24", "25–59", "60-79", "80+"]
    got = weights.age_band(pd.Series([0, 14, 15, 59, 60, 95, None]), bands)
    assert got.tolist()[:6] == ["0-14", "0-14", "15-24", "25–59", "60-79", "80+"]
    assert pd.isna(got.iloc[6])
    with pytest.raises(DesignError, match="age band"):
        weights.parse_age_bands(["young"])


def test_frame_margins_sum_the_frame_by_each_raking_variable():
    frame = pd.DataFrame(
        {
            "cunju": ["c01", "c01", "c02", "c02"],
            "sex": ["male", "female", "male", "female"],
            "age_band": ["0-59", "60+", "0-59", "60+"],
            "registration": ["local", "nonlocal", "nonlocal", "local"],
            "population": [10, 20, 30, 40],
        }
    )
    margins = weights.frame_margins(frame)
    assert margins["cunju"] == {"c01": 30.0, "c02": 70.0}
    assert margins["sex_age"] == {"female|60+": 60.0, "male|0-59": 40.0}
    assert margins["rake_registration"] == {"local": 50.0, "nonlocal": 50.0}
    persons = pd.DataFrame({"cunju": ["c01"], "sex_age": ["male|0-59"], "rake_registration": ["local"]})
    with pytest.raises(DesignError, match="no respondent"):
        weights.check_rake_cells(persons, margins)


def test_household_weight_is_the_mean_of_its_members_weights():
    persons = pd.DataFrame({"household_id": ["a", "a", "b"]})
    households = pd.DataFrame({"household_id": ["b", "a"]})
    got = weights.household_weights_from_persons(persons, pd.Series([1.0, 3.0, 5.0]), households)
    assert got.tolist() == [5.0, 2.0]


def test_kish_design_effect_due_to_weighting():
    summary = weights.weight_summary(pd.Series([1.0, 1.0, 2.0, 4.0]), "x").set_index("category")["value"]
    assert summary["kish_deff"] == pytest.approx(4 * 22 / 64)


@pytest.fixture(scope="module")
def simulated_sample():
    from analysis import simulate

    population = simulate.build_population(5, scale=0.1)
    return simulate.draw_sample(population, 1), simulate.population_frame(population), population


@pytest.fixture(scope="module")
def simulated_weights(simulated_sample):
    from analysis import simulate

    sample, frame, population = simulated_sample
    composition = simulate.elderly_households(population)
    return (frame, composition), weights.build_weights(
        sample.households, sample.persons, sample.design, frame, composition=composition, replicates=20
    )


def test_raking_reproduces_the_frame_margins_in_the_sample_and_every_replicate(simulated_weights):
    (frame, composition), built = simulated_weights
    replicate_matrix = built.person_replicates.drop(columns="person_id").to_numpy()
    assert replicate_matrix.shape[1] == 20
    margins = weights.frame_margins(frame, composition)
    assert set(margins) == {"cunju", "sex_age", "rake_registration", "elderly_household"}
    for var, totals in margins.items():
        target = pd.Series(totals)
        got = built.persons.groupby(var)["weight"].sum().reindex(target.index)
        np.testing.assert_allclose(got, target, rtol=1e-8)
        per_replicate = pd.DataFrame(replicate_matrix).groupby(built.persons[var].to_numpy()).sum()
        np.testing.assert_allclose(
            per_replicate.reindex(target.index), np.tile(target.to_numpy()[:, None], 20), rtol=1e-6
        )


def test_household_weights_and_replicates_follow_their_members(simulated_weights):
    _, built = simulated_weights
    mean = built.persons.groupby("household_id")["weight"].mean()
    np.testing.assert_allclose(
        built.households.set_index("household_id")["weight"], mean.reindex(built.households["household_id"])
    )
    assert built.household_replicates["household_id"].tolist() == built.households["household_id"].tolist()
    assert (built.person_replicates.drop(columns="person_id").to_numpy() >= 0).all()
    summary = built.diagnostics.query("section == 'weights' and category == 'kish_deff'")
    assert set(summary["stage"]) == {"base", "nonresponse", "trimmed", "raked", "household_final"}


# -- replicate weights: the whole weighting redone in every replicate ----------------------------


def test_the_issued_sample_lists_every_issued_household_responding_ones_first():
    hh = households_in({"c01-g01": 5, "c01-g02": 10, "c02-g01": 4, "c02-g02": 8})
    issued = weights.issued_sample(hh, SAMPLE_DESIGN)
    assert (
        issued.groupby("psu").size().to_dict()
        == SAMPLE_DESIGN.set_index("psu")["households_issued"].to_dict()
    )
    assert issued["responded"].sum() == len(hh)
    assert issued.loc[issued["responded"], "psu"].tolist() == hh["psu"].tolist()
    np.testing.assert_allclose(
        issued.loc[issued["responded"], "weight_base"], weights.base_weights(hh, SAMPLE_DESIGN)
    )
    too_many = households_in({"c01-g01": 11, "c01-g02": 1, "c02-g01": 1, "c02-g02": 1})
    with pytest.raises(DesignError, match="11 responding households but 10 issued"):
        weights.issued_sample(too_many, SAMPLE_DESIGN)


def test_replicate_nonresponse_adjustment_is_the_full_samples_when_every_factor_is_one():
    hh = households_in({"c01-g01": 2, "c01-g02": 2, "c02-g01": 4, "c02-g02": 8})  # c01 pooled
    issued = weights.issued_sample(hh, SAMPLE_DESIGN)
    classes = weights.nonresponse_classes(hh, SAMPLE_DESIGN, min_respondents=3)
    ones = weights.nonresponse_replicates(issued, np.ones((len(issued), 2)), classes)
    full = weights.base_weights(hh, SAMPLE_DESIGN) * weights.nonresponse_factors(hh, SAMPLE_DESIGN, 3)
    np.testing.assert_allclose(ones, np.tile(full.to_numpy()[:, None], 2), rtol=1e-12)


def test_each_replicate_restores_its_own_weighted_issued_households_per_class():
    hh = households_in({"c01-g01": 2, "c01-g02": 2, "c02-g01": 4, "c02-g02": 8})
    issued = weights.issued_sample(hh, SAMPLE_DESIGN)
    classes = weights.nonresponse_classes(hh, SAMPLE_DESIGN, min_respondents=3)
    factors = weights.replicate_factors(issued, 30, seed=4)
    adjusted = weights.nonresponse_replicates(issued, factors, classes)
    klass = hh["psu"].map(classes.set_index("psu")["class"]).to_numpy()
    issued_class = issued["psu"].map(classes.set_index("psu")["class"]).to_numpy()
    for c in np.unique(klass):
        want = (issued["weight_base"].to_numpy()[:, None] * factors)[issued_class == c].sum(axis=0)
        np.testing.assert_allclose(adjusted[klass == c].sum(axis=0), want, rtol=1e-12)
    # the adjustment differs between replicates (it is redone), unlike a fixed full-sample factor
    ratio = adjusted / (
        issued.loc[issued["responded"], "weight_base"].to_numpy()[:, None] * factors[: len(hh)]
    )
    assert ratio.std(axis=1).max() > 0.01


def test_replicate_factors_follow_both_stages_of_the_design():
    hh = households_in({"c01-g01": 5, "c01-g02": 10, "c02-g01": 4, "c02-g02": 8})
    issued = weights.issued_sample(hh, SAMPLE_DESIGN)
    factors = weights.replicate_factors(issued, 4000, seed=1)
    np.testing.assert_allclose(factors.mean(axis=1), 1.0, atol=0.1)
    # within a PSU households move apart (second stage), not only whole PSUs
    assert (factors[:5].std(axis=0) > 0).any()
    # a group taken with certainty is a stratum of its own: only its households are half-sampled,
    # each factor 1 ± λ with λ = √(m(1 − f)/(n − m)), here n = 10 issued of 100, m = 5
    certain = SAMPLE_DESIGN.assign(p_psu=1.0, stratum_psus=2)
    issued = weights.issued_sample(hh, certain)
    factors = weights.replicate_factors(issued, 50, seed=1)
    lam = np.sqrt(5 * (1 - 10 / 100) / 5)
    np.testing.assert_allclose(np.unique(factors[issued["psu"] == "c01-g01"].round(12)), [1 - lam, 1 + lam])


def test_counted_median_and_trimming_treat_a_row_as_its_count_of_persons():
    rng = np.random.default_rng(3)
    values = rng.gamma(2.0, 5.0, size=(9, 4))
    counts = np.array([1, 3, 2, 1, 4, 1, 2, 2, 1])
    expanded = np.repeat(values, counts, axis=0)
    np.testing.assert_allclose(
        weights.counted_median(values, counts.astype(float)), np.median(expanded, axis=0)
    )
    groups = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2])
    trimmed = weights.trim_columns(values, groups, counts.astype(float), 1.5)
    for r in range(4):
        one = weights.trim_weights(pd.Series(expanded[:, r]), pd.Series(np.repeat(groups, counts)), 1.5)
        np.testing.assert_allclose(np.repeat(trimmed[:, r], counts), one, rtol=1e-12)


def test_trimming_is_redone_in_every_replicate(simulated_sample):
    sample, frame, _ = simulated_sample

    def replicates(ratio):
        built = weights.build_weights(
            sample.households, sample.persons, sample.design, frame, trim_max_ratio=ratio, replicates=20
        )
        return built.persons, built.person_replicates.drop(columns="person_id").to_numpy()

    _, untrimmed = replicates(None)
    _, loose = replicates(1e6)  # a cap no weight reaches changes nothing
    persons, trimmed = replicates(1.5)
    np.testing.assert_allclose(loose, untrimmed, rtol=1e-12)
    assert np.abs(trimmed / untrimmed - 1).max() > 0.01
    for var, totals in weights.frame_margins(frame).items():
        per_replicate = pd.DataFrame(trimmed).groupby(persons[var].to_numpy()).sum().reindex(list(totals))
        np.testing.assert_allclose(
            per_replicate, np.tile(np.array(list(totals.values()))[:, None], 20), rtol=1e-6
        )


def test_elderly_household_marks_every_member_of_a_household_with_someone_aged_60_or_more():
    frame = pd.DataFrame({"age_band": ["0-59", "60+"]})
    persons = pd.DataFrame(
        {
            "household_id": ["a", "a", "b", "b", "c"],
            "person_id": ["a1", "a2", "b1", "b2", "c1"],
            "age": [34, 61, 40, None, 75],
            "sex": ["male", "female", "male", "female", "male"],
            "registration": ["local"] * 5,
            "relation": ["head", "parent", "head", "parent", "head"],
        }
    )
    # b2's age is missing: she is counted by the band imputed from respondents with her relation (parent)
    cells = weights.add_rake_cells(persons, frame)
    assert cells["elderly_household"].tolist() == ["yes", "yes", "yes", "yes", "yes"]
    cells = weights.add_rake_cells(persons.assign(age=[34, 30, 40, None, 75]), frame)
    assert cells["elderly_household"].tolist() == ["no", "no", "no", "no", "yes"]


def test_the_composition_file_is_optional_and_its_errors_name_file_row_and_column(tmp_path):
    assert weights.read_composition(tmp_path) is None
    path = tmp_path / weights.COMPOSITION_FILE
    path.write_text("elderly_household,population\nyes,10\nno,90\n", encoding="utf-8")
    assert weights.read_composition(tmp_path).set_index("elderly_household")["population"].to_dict() == {
        "yes": 10.0,
        "no": 90.0,
    }
    path.write_text("elderly_household,population\nyes,10\nmaybe,90\n", encoding="utf-8")
    with pytest.raises(DesignError) as bad:
        weights.read_composition(tmp_path)
    assert (bad.value.file, bad.value.row, bad.value.column) == (str(path), 3, "elderly_household")
    path.write_text("elderly_household,population\nyes,-1\nno,90\n", encoding="utf-8")
    with pytest.raises(DesignError) as bad:
        weights.read_composition(tmp_path)
    assert (bad.value.row, bad.value.column) == (2, "population")
    path.write_text("elderly_household,persons\nyes,1\nno,90\n", encoding="utf-8")
    with pytest.raises(DesignError, match="population"):
        weights.read_composition(tmp_path)


def test_a_composition_that_does_not_add_up_to_the_frame_is_refused():
    frame = pd.DataFrame(
        {
            "cunju": ["c1", "c1"],
            "sex": ["male", "female"],
            "age_band": ["0-59", "60+"],
            "population": [60, 40],
        }
    ).assign(registration="local")
    composition = pd.DataFrame({"elderly_household": ["yes", "no"], "population": [30.0, 60.0]})
    with pytest.raises(DesignError, match="add up to 90, the population frame to 100") as bad:
        weights.frame_margins(frame, composition)
    assert (bad.value.file, bad.value.column) == (weights.COMPOSITION_FILE, "population")
    composition["population"] = [30.0, 70.0]
    assert weights.frame_margins(frame, composition)["elderly_household"] == {"yes": 30.0, "no": 70.0}
