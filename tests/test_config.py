"""Configuration: the bundled files validate; a bad value is named by file, dotted key and line; the team list
has one source (needs.yaml), and the assumptions must hold exactly its teams."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from analysis import config
from analysis.errors import ConfigError


def _edited(source, tmp_path, old: str, new: str):
    text = source.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / source.name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path, text.replace(old, new, 1)


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if fragment in line)


def test_the_bundled_files_validate():
    needs = config.load_needs()
    assumptions = config.load_assumptions(needs=needs)
    labels = config.load_label_texts()
    assert list(assumptions["teams"]) == list(needs["teams"])
    assert {"figures", "brief", "footnote"} <= set(labels)
    assert config.load_assumptions()["plan"]["method"] == "hamilton"


def test_a_bad_assumption_is_named_by_file_key_and_line(tmp_path):
    path, text = _edited(
        config.ASSUMPTIONS_PATH, tmp_path, "sick_leave:      {value: 5,", "sick_leave:      {value: five,"
    )
    with pytest.raises(ConfigError) as error:
        config.load_assumptions(path)
    assert error.value.file == str(path)
    assert error.value.column == "working_time.sick_leave"
    assert error.value.row == _line_of(text, "sick_leave:")
    assert "'five', which is not a number" in str(error.value)


def test_a_typo_in_needs_yaml_is_refused_with_its_line(tmp_path):
    path, text = _edited(config.NEEDS_PATH, tmp_path, "    services: [rehab,", "    service: [rehab,")
    with pytest.raises(ConfigError, match=r"teams\.disability\.service.*unknown key") as error:
        config.load_needs(path)
    assert error.value.row == _line_of(text, "service: [rehab,")


def test_a_need_flag_outside_the_team_indicators_is_refused(tmp_path):
    path, _ = _edited(
        config.NEEDS_PATH, tmp_path, "in_need_if_any: [wg_disability]", "in_need_if_any: [wg_cannot_hear]"
    )
    with pytest.raises(ConfigError, match=r"teams\.disability.*wg_cannot_hear"):
        config.load_needs(path)


def test_a_label_must_keep_its_placeholders_in_both_languages(tmp_path):
    path, text = _edited(
        config.LABELS_PATH, tmp_path, 'en: "N = {households:,} households', 'en: "N = {homes:,} households'
    )
    with pytest.raises(ConfigError, match=r"label 'footnote\.n' has placeholders") as error:
        config.load_label_texts(path)
    assert error.value.row == _line_of(text, "{homes:,}")


def test_assumptions_must_cover_exactly_the_teams_of_needs_yaml():
    needs = config.load_needs()
    fewer = {"teams": {t: s for t, s in needs["teams"].items() if t != "youth"}}
    with pytest.raises(ConfigError, match="'youth' is not a team of needs.yaml"):
        config.load_assumptions(needs=fewer)
    more = {"teams": {**needs["teams"], "carers": needs["teams"]["family"]}}
    with pytest.raises(ConfigError, match="'carers' of needs.yaml has no planning assumptions") as error:
        config.load_assumptions(needs=more)
    assert error.value.column == "teams.carers"
    reordered = {"teams": dict(reversed(list(needs["teams"].items())))}
    assert list(config.load_assumptions(needs=reordered)["teams"]) == list(reordered["teams"])


def test_load_model_serves_any_settings_file(tmp_path):
    class Sampling(config.Section):
        households: int
        seed: int = 1

    class Settings(config.Section):
        sampling: Sampling

    path = tmp_path / "settings.yaml"
    path.write_text("# comment\nsampling:\n  households: many\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        config.load_model(path, Settings, "simulation settings")
    assert (error.value.row, error.value.column) == (3, "sampling.households")
    assert re.search(r"'sampling\.households' is invalid", str(error.value))
    path.write_text("sampling:\n  households: 12\n", encoding="utf-8")
    assert config.load_model(path, Settings, "simulation settings") == Settings(
        sampling=Sampling(households=12)
    )
    assert isinstance(config.load_model(path, Settings, "simulation settings"), BaseModel)
