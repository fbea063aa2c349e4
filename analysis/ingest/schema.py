"""The form as the readers use it: per-field look-ups computed once."""

from __future__ import annotations

import pandas as pd

from analysis.instrument import Form


class Schema:
    """A :class:`Form` with its per-field look-ups computed once (a form has ~150 fields; an export
    reader asks for them thousands of times)."""

    def __init__(self, form: Form):
        self.form = form
        self.survey, self.choices, self.settings = form.survey, form.choices, form.settings
        self._data = form.data_fields()
        self._rows = {r["name"]: r for r in form.survey.to_dict("records")}
        by_list = {k: g for k, g in form.choices.groupby("list_name", sort=False)}
        empty = form.choices.iloc[:0]
        self._choices = {n: by_list.get(r["list_name"], empty) for n, r in self._rows.items()}
        self._lookup: dict[str, dict[str, str]] = {}

    def data_fields(self) -> pd.DataFrame:
        return self._data

    def field(self, name: str) -> dict:
        if name not in self._rows:
            return self.form.field(name)  # raises the form's error
        return self._rows[name]

    def choice_names(self, name: str) -> list[str]:
        return self._choices[name]["name"].tolist()

    def choice_rows(self, name: str) -> pd.DataFrame:
        return self._choices[name]

    def export_column(self, name: str, sep: str = "/") -> str:
        return self.form.export_column(name, sep)

    def lookup(self, name: str) -> dict[str, str]:
        """Choice label (every language) or name -> choice name (names win over labels)."""
        if name not in self._lookup:
            rows = self._choices[name]
            table = {}
            for col in [c for c in rows.columns if c.startswith("label")] + ["name"]:
                table.update({str(k).strip(): n for k, n in zip(rows[col], rows["name"]) if str(k).strip()})
            self._lookup[name] = table
        return self._lookup[name]


def as_schema(form: Form | Schema) -> Schema:
    return form if isinstance(form, Schema) else Schema(form)


def repeat_names(form: Form | Schema) -> list[str]:
    """Names of the form's repeat groups, in form order."""
    return form.survey.loc[form.survey["base_type"] == "begin_repeat", "name"].tolist()
