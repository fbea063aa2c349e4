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
# Kobo, R (``X_`` for a leading underscore) and ODK Briefcase / SurveyCTO (KEY, PARENT_KEY) names of the
# structural columns: the submission id, the row index and the links from repeat rows to their submission
SYSTEM_ALIASES = {
    "_uuid": "uuid",
    "X_uuid": "uuid",
    "uuid": "uuid",
    "meta/instanceID": "uuid",
    "instanceID": "uuid",
    "KEY": "uuid",
    "_index": "index",
    "X_index": "index",
    "index": "index",
    "_parent_index": "parent_index",
    "X_parent_index": "parent_index",
    "parent_index": "parent_index",
    "_submission__uuid": "parent_uuid",
    "X_submission__uuid": "parent_uuid",
    "parent_uuid": "parent_uuid",
    "PARENT_KEY": "parent_uuid",
}
# Kobo metadata kept in the clean tables as text (not personal: no _submitted_by, _geolocation, _notes)
KEPT_METADATA = (
    "_id",
    "_index",
    "_submission_time",
    "_status",
    "_validation_status",
    "_version_",
    "__version__",
    "_xform_id_string",
    "_parent_index",
    "_parent_table_name",
    "_submission__id",
    "_submission__submission_time",
)
BYTE_ORDER_MARKS = ("\ufeff", "X.U.FEFF.", "ï..", "ď..")  # a BOM, and R's read.csv spellings of one


def clean_header(header: str) -> str:
    """A header without a byte-order mark or R's spelling of one (``X.U.FEFF.start`` -> ``start``)."""
    header = header.strip()
    for mark in BYTE_ORDER_MARKS:
        header = header.removeprefix(mark)
    return header


def metadata_name(header: str) -> str | None:
    """The kept-metadata name of a header (``X_submission_time`` -> ``_submission_time``), or None."""
    name = header[1:] if header.startswith("X_") else header
    return name if name in KEPT_METADATA else None


@dataclass(frozen=True)
class Mapping:
    fields: dict[str, str]  # header -> field name
    dummies: dict[str, tuple]  # header -> (select_multiple field, option)
    system: dict[str, str]  # header -> uuid / index / parent_index / parent_uuid
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
    scored = [
        (len(m.fields) + len(m.dummies), -i, sep, m)
        for i, sep in enumerate(candidates)
        for m in [map_headers(headers, form, sep)]
    ]
    _, _, sep, mapping = max(scored, key=lambda t: (t[0], t[1]))
    return sep, mapping


def check_duplicate_targets(mapping: Mapping, path: Path) -> None:
    """Refuse two columns that hold the same field (or the same option of a select_multiple)."""
    seen: dict[object, str] = {}
    for header, target in list(mapping.fields.items()) + list(mapping.dummies.items()):
        if target in seen:
            raise IngestError(
                f"columns '{seen[target]}' and '{header}' both hold field {target}",
                file=path,
                row=1,
                column=header,
                hint="remove one of the duplicated columns",
            )
        seen[target] = header


UUID_PRIORITY = ("_uuid", "X_uuid", "meta/instanceID", "instanceID", "KEY", "uuid")  # first found is the id


def system_columns(table, mapping: Mapping) -> dict:
    """Structural columns by role (uuid, index, parent_index, parent_uuid) as stripped text; of several
    submission-id columns the first in :data:`UUID_PRIORITY` wins (a plain ``uuid`` column may hold the
    form's id, as ``formhub/uuid`` does)."""
    rank = {h: UUID_PRIORITY.index(h) if h in UUID_PRIORITY else len(UUID_PRIORITY) for h in mapping.system}
    ordered = sorted(mapping.system.items(), key=lambda hv: -rank[hv[0]])
    return {role: table[h].astype(str).str.strip() for h, role in ordered}
