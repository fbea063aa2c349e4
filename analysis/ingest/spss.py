"""SPSS ``.sav`` exports (value labels kept): ``<stem>.sav`` plus ``<stem>_<repeat>.sav``; and the writer that
turns a Kobo-style export into such files."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from analysis.errors import IngestError
from analysis.ingest.files import cell_text, check_headers
from analysis.ingest.headers import best_mapping
from analysis.ingest.schema import Schema, as_schema, repeat_names
from analysis.instrument import Form


def read_sav(path: Path) -> tuple[pd.DataFrame, dict[str, dict]]:
    """An SPSS file as an all-string table plus its value labels {column: {value text: label}}."""
    import pyreadstat

    if path.stat().st_size == 0:
        raise IngestError("the file is empty", file=path)
    try:
        frame, meta = pyreadstat.read_sav(str(path), apply_value_formats=False)
    except Exception as exc:  # pyreadstat.ReadstatError and others
        raise IngestError(f"not a readable SPSS file ({exc})", file=path) from exc
    check_headers(list(frame.columns), path)
    labels = {
        col: {cell_text(pd.Series([k])).iloc[0]: str(v) for k, v in meta.value_labels[name].items()}
        for col, name in meta.variable_to_label.items()
    }
    return frame.astype(object).apply(cell_text) if len(frame) else frame.astype(object), labels


def tables(path: Path, form: Schema) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], list[Path], dict]:
    """Main table, repeat tables by repeat name, the files read, and value labels by column
    (repeat columns as ``<repeat>:<column>``)."""
    main, labels = read_sav(path)
    out, files = {}, [path]
    for r in repeat_names(form):
        sibling = path.with_name(f"{path.stem}_{r}.sav")
        if sibling.exists():
            out[r], more = read_sav(sibling)
            labels = {**labels, **{f"{r}:{k}": v for k, v in more.items()}}
            files.append(sibling)
    return main, out, files, labels


def write_sav(
    households: pd.DataFrame, persons: dict[str, pd.DataFrame], form: Form | Schema, path: str | Path
) -> list[Path]:
    """Write a Kobo-style export (bare or prefixed headers) as SPSS files with value labels.

    ``households`` and each repeat table in ``persons`` hold Kobo columns (``_uuid``, ``_index``,
    ``_parent_index``, ``<group>/<field>``, ``<q>/<option>``). Headers become bare SPSS names
    (``uuid``, ``index``, ``parent_index``, ``<field>``, ``<q>.<option>``); select_one answers whose choice
    names are not numbers are stored as 1..k with the Chinese labels as value labels, as SPSS exports do.
    Writes ``<path>`` and ``<stem>_<repeat>.sav``; returns the paths.
    """
    import pyreadstat

    path = Path(path)
    form = as_schema(form)
    written = []
    for table, target in [(households, path)] + [
        (t, path.with_name(f"{path.stem}_{r}.sav")) for r, t in persons.items()
    ]:
        _, mapping = best_mapping(list(table.columns), form, "/")
        out, value_labels, variable_labels = {}, {}, {}
        for header in table.columns:
            if header in mapping.system:
                out[mapping.system[header]] = table[header].astype(str)
            elif header in mapping.fields:
                name = mapping.fields[header]
                row = form.field(name)
                values = table[header]
                if row["base_type"] == "select_one":
                    names = form.choice_names(name)
                    chosen = form.choice_rows(name)
                    if all(re.fullmatch(r"-?\d+", n) for n in names):
                        out[name] = pd.to_numeric(values, errors="coerce")
                        value_labels[name] = {
                            int(n): lab for n, lab in zip(chosen["name"], chosen["label_zh"])
                        }
                    else:
                        code = {n: i for i, n in enumerate(names, start=1)}
                        out[name] = values.map(code).astype(float)
                        value_labels[name] = {i: lab for i, lab in enumerate(chosen["label_zh"], start=1)}
                elif row["base_type"] in ("integer", "decimal"):
                    out[name] = pd.to_numeric(values, errors="coerce")
                else:
                    out[name] = values.astype(object).where(values.notna(), "").astype(str)
                variable_labels[name] = row["label_zh"] or name
            elif header in mapping.dummies:
                name, option = mapping.dummies[header]
                out[f"{name}.{option}"] = pd.to_numeric(table[header], errors="coerce")
        frame = pd.DataFrame(out)
        pyreadstat.write_sav(
            frame,
            str(target),
            variable_value_labels=value_labels,
            column_labels={c: variable_labels.get(c, c) for c in frame.columns},
        )
        written.append(target)
    return written
