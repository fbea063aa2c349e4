"""Export headers mapped to the form: bare field names, select_multiple option columns, system columns.

Group separators ``/`` (Kobo), ``.`` (R's ``read.csv``) and ``-`` (ODK Briefcase) are detected: the one
that maps most headers wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analysis.errors import IngestError
from analysis.ingest.schema import Schema

SEPARATORS = ("/", ".", "-")
SYSTEM_ALIASES = {
    "_uuid": "uuid", "X_uuid": "uuid", "uuid": "uuid", "meta/instanceID": "uuid", "instanceID": "uuid",
    "_index": "index", "X_index": "index", "index": "index",
    "_parent_index": "parent_index", "X_parent_index": "parent_index", "parent_index": "parent_index",
    "_submission__uuid": "parent_uuid", "X_submission__uuid": "parent_uuid", "parent_uuid": "parent_uuid",
}


@dataclass(frozen=True)
class Mapping:
    fields: dict[str, str]          # header -> field name
    dummies: dict[str, tuple]       # header -> (select_multiple field, option)
    system: dict[str, str]          # header -> uuid / index / parent_index / parent_uuid
    unmapped: list[str]


def map_headers(headers: list[str], form: Schema, sep: str) -> Mapping:
    """Map export headers to bare field names, select_multiple option columns and system columns."""
    data = form.data_fields()
    names = set(data["name"])
    multi = {n: set(form.choice_names(n)) for n in data.loc[data["base_type"] == "select_multiple", "name"]}
    fields, dummies, system, unmapped = {}, {}, {}, []
    for header in headers:
        parts = header.split(sep) if sep else [header]
        if header in SYSTEM_ALIASES:
            system[header] = SYSTEM_ALIASES[header]
        elif header in names:
            fields[header] = header
        elif parts[-1] in names and len(parts) > 1:
            fields[header] = parts[-1]
        elif len(parts) > 1 and parts[-2] in multi and parts[-1] in multi[parts[-2]]:
            dummies[header] = (parts[-2], parts[-1])
        elif header.startswith(("_", "X_", "meta", "formhub", "__")) or header == "":
            continue  # Kobo/ODK system columns (docs/sources.md §5.4); not survey answers
        else:
            unmapped.append(header)
    return Mapping(fields, dummies, system, unmapped)


def best_mapping(headers: list[str], form: Schema, group_sep: str | None) -> tuple[str, Mapping]:
    """The separator that maps most headers (``/`` wins ties), or the one the caller gave."""
    candidates = [group_sep] if group_sep else list(SEPARATORS)
    scored = [(len(m.fields) + len(m.dummies), -i, sep, m)
              for i, sep in enumerate(candidates) for m in [map_headers(headers, form, sep)]]
    _, _, sep, mapping = max(scored, key=lambda t: (t[0], t[1]))
    return sep, mapping


def check_duplicate_targets(mapping: Mapping, path: Path) -> None:
    """Refuse two columns that hold the same field (or the same option of a select_multiple)."""
    seen: dict[object, str] = {}
    for header, target in list(mapping.fields.items()) + list(mapping.dummies.items()):
        if target in seen:
            raise IngestError(f"columns '{seen[target]}' and '{header}' both hold field {target}", file=path,
                              row=1, column=header, hint="remove one of the duplicated columns")
        seen[target] = header
