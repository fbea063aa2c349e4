"""``read_export``: one export file (any format) to household and person tables keyed to the form.

The work is done in steps, each a function: find the file and its format, read its tables, map the
headers to the form, key the submissions, type the household answers, link the repeat tables into
persons, remove personal data from free text, and record where the data came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import IngestError
from analysis.ingest import kobo, spss, wjx
from analysis.ingest.files import csv_header, sha256, xlsx_first_headers
from analysis.ingest.headers import (
    Mapping,
    best_mapping,
    check_duplicate_targets,
    clean_header,
    metadata_name,
    system_columns,
)
from analysis.ingest.privacy import household_keys, own_secrets, redact, unique_uuids
from analysis.ingest.schema import Schema, as_schema, repeat_names
from analysis.ingest.values import form_order, frame_for, numbers
from analysis.instrument import METADATA_TYPES, Form

CONVERSION_COLUMNS = ["uuid", "person_id", "question", "old_value", "new_value", "issue"]
MIN_MAPPED_SHARE = (
    0.5  # below this share of its answer columns matching the form, an export is another survey's
)


@dataclass(frozen=True)
class RawExport:
    """A raw export mapped onto the form, personal data removed.

    ``households``: ``uuid``, ``household_id``, ``row`` (1-based submission number in the file), then
    the household fields by bare name; ``persons``: ``uuid``, ``household_id``, ``person_id``, ``member``
    (1-based order in the household), then repeat fields. ``redactions``: one row per free-text answer
    from which personal data was removed (uuid, person_id, question, issue). ``conversions``: one row per
    numeric answer that was not a plain number (full-width digits, an Excel date, text), with what was
    read (uuid, person_id, question, old_value, new_value, issue).
    """

    households: pd.DataFrame
    persons: pd.DataFrame
    source_format: str
    files: tuple[Path, ...]
    checksums: dict[str, str]
    separator: str | None
    unmapped_columns: tuple[str, ...]
    missing_columns: tuple[str, ...]
    redactions: pd.DataFrame
    provenance: dict = field(default_factory=dict)
    conversions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CONVERSION_COLUMNS))


# ----- the file ---------------------------------------------------------------------------------------


def locate(path: Path, form: Schema) -> Path:
    """The export file itself: ``path``, or the main export in the folder ``path`` (not a repeat file)."""
    if path.is_dir():
        repeats = repeat_names(form)
        candidates = sorted(
            p
            for p in path.iterdir()
            if p.suffix.lower() in (".xlsx", ".csv", ".sav")
            and p.stem not in repeats
            and "_" + p.stem.split("_")[-1] not in {f"_{r}" for r in repeats}
        )
        if not candidates:
            raise IngestError("no export file in this folder", file=path)
        path = candidates[0]
    if not path.exists():
        raise IngestError("file not found", file=path)
    return path


def detect_format(path: Path) -> str:
    """``kobo_xlsx``, ``kobo_csv``, ``wjx_csv``, ``wjx_xlsx`` or ``spss`` from the file name and headers."""
    suffix = path.suffix.lower()
    if suffix == ".sav":
        return "spss"
    if suffix in (".xlsx", ".xlsm"):
        return "wjx_xlsx" if "序号" in xlsx_first_headers(path) else "kobo_xlsx"
    if suffix in (".csv", ".txt"):
        header = csv_header(path)
        return "wjx_csv" if any(h.strip().lstrip("\ufeff") == "序号" for h in header) else "kobo_csv"
    raise IngestError(
        f"unsupported file type '{suffix or path.name}'",
        file=path,
        hint="use a Kobo/ODK .xlsx or .csv, a 问卷星 .csv/.xlsx, or an SPSS .sav",
    )


def read_tables(
    path: Path, fmt: str, form: Schema
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], list[Path], dict, list[str]]:
    """Main table (Kobo headers), repeat tables by repeat name, the files read, SPSS value labels, and
    headers that could not be matched to the form (问卷星 labels)."""
    labels: dict = {}
    unmapped: list[str] = []
    if fmt == "kobo_xlsx":
        main, repeats, files = kobo.xlsx_tables(path, form)
    elif fmt == "kobo_csv":
        main, repeats, files = kobo.csv_tables(path, form)
    elif fmt == "spss":
        main, repeats, files, labels = spss.tables(path, form)
    else:
        table, _, files = wjx.tables(path, fmt)
        main, repeats, unmapped = wjx.to_kobo(table, form)
    if main.empty:
        raise IngestError("the export has a header but no submissions", file=path, row=2)
    main = main.rename(columns=clean_header)
    repeats = {r: t.rename(columns=clean_header) for r, t in repeats.items()}
    return main, repeats, files, labels, unmapped


# ----- mapping and keys -------------------------------------------------------------------------------


def _answer_fields(form: Schema, main: pd.DataFrame) -> pd.DataFrame:
    """The form's answer fields (calculations only when the export carries them)."""
    data = form.data_fields()
    return data[~data["base_type"].isin(["calculate"]) | data["name"].isin(main.columns)]


def check_coverage(mapping: Mapping, unmapped_extra: list[str], path: Path) -> None:
    """Refuse another survey's export: fewer than half of its answer columns (those that are not Kobo
    system columns) match the form. A shortened export of this form (questions removed before it was
    published) passes: its columns still match."""
    mapped = len(mapping.fields) + len(mapping.dummies)
    share = mapped / max(mapped + len(mapping.unmapped) + len(unmapped_extra), 1)
    if mapped == 0 or share < MIN_MAPPED_SHARE:
        raise IngestError(
            f"only {share:.0%} of the export's columns match the form's questions: this looks like "
            f"another survey's export",
            file=path,
            row=1,
            hint="check that --form is the instrument this export was collected with",
        )


def submission_ids(
    main: pd.DataFrame, mapping: Mapping, fmt: str, form: Schema, path: Path
) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Submission keys (uuid, household_id, row) and the system columns (uuid, index, …) as text.

    The uuid column is the one structural column every export needs; 问卷星 without a custom uuid
    parameter is keyed on its serial number.
    """
    system = system_columns(main, mapping)
    if fmt.startswith("wjx") and "uuid" not in system:
        system["uuid"] = "wjx-" + main["index"].astype(str)
    if "uuid" not in system:
        raise IngestError(
            "missing required column _uuid (the submission id)",
            file=path,
            row=1,
            column="_uuid",
            hint="export with the _uuid column (Kobo 'include all versions/metadata')",
        )
    uuid = system["uuid"].str.replace(r"^uuid:", "", regex=True)
    empty_uuid = uuid == ""
    if empty_uuid.any():
        raise IngestError(
            "submission without a uuid", file=path, row=int(np.flatnonzero(empty_uuid)[0]) + 2, column="_uuid"
        )
    uuid = unique_uuids(uuid)
    salt = str(form.settings.get("form_id", "form"))
    ids = pd.DataFrame(
        {"uuid": uuid, "household_id": household_keys(uuid, salt), "row": np.arange(1, len(main) + 1)},
        index=main.index,
    )
    return ids, system


# ----- tables -----------------------------------------------------------------------------------------


@dataclass
class _Persons:
    """Repeat rows linked to their submissions, before keys are assigned."""

    frames: list[pd.DataFrame]
    pii: list[pd.DataFrame]
    notes: list[pd.DataFrame]
    unmapped: list[str]


def link_repeats(
    repeats: dict[str, pd.DataFrame],
    data: pd.DataFrame,
    form: Schema,
    sep: str,
    system: dict[str, pd.Series],
    ids: pd.DataFrame,
    path: Path,
    multi_sep: str | None,
    positional: bool,
    labels: dict,
) -> _Persons:
    """Each repeat table typed and linked to its submission by ``_parent_index`` (or the parent uuid)."""
    out = _Persons([], [], [], [])
    uuid = ids["uuid"]
    for repeat_name, table in repeats.items():
        rep_fields = data[data["repeat"] == repeat_name]
        _, rep_map = best_mapping(list(table.columns), form, sep)
        check_duplicate_targets(rep_map, path)
        out.unmapped += [f"{repeat_name}:{h}" for h in rep_map.unmapped]
        rep_system = system_columns(table, rep_map)
        by_uuid = dict(
            zip(
                system["uuid"].str.replace(r"^uuid:", "", regex=True)[~uuid.str.contains("#")],
                ids.index[~uuid.str.contains("#")],
            )
        )
        if "parent_index" in rep_system and "index" in system:
            parent = _lookup(system["index"], ids.index, rep_system["parent_index"])
        elif "parent_uuid" in rep_system:
            parent = rep_system["parent_uuid"].str.replace(r"^uuid:", "", regex=True).map(by_uuid)
        elif (
            "uuid" in rep_system
            and rep_system["uuid"].str.replace(r"^uuid:", "", regex=True).isin(by_uuid).all()
        ):
            # a repeat table whose id column holds its submission's uuid (R exports of Kobo loops, X_uuid)
            parent = rep_system["uuid"].str.replace(r"^uuid:", "", regex=True).map(by_uuid)
        else:
            raise IngestError(
                f"repeat table '{repeat_name}' has no _parent_index column linking it to submissions",
                file=path,
                column="_parent_index",
                hint="export with _parent_index (Kobo) or PARENT_KEY (ODK Briefcase)",
            )
        table, rep_notes = numbers(table, rep_map.fields, rep_fields)
        out.notes.append(rep_notes.assign(source=repeat_name + ":" + rep_notes["position"].astype(str)))
        orphans = parent.isna()
        if orphans.any():
            raise IngestError(
                f"repeat '{repeat_name}' row has no matching submission",
                file=path,
                row=int(np.flatnonzero(orphans)[0]) + 2,
                column="_parent_index",
            )
        frame = frame_for(
            table,
            rep_map,
            rep_fields[~rep_fields["pii"]],
            form,
            multi_sep,
            positional,
            labels,
            f"{repeat_name}:",
        )
        frame.insert(0, "_parent", parent.astype(int).values)
        frame["_source"] = repeat_name + ":" + pd.Series(np.arange(len(frame)), index=frame.index).astype(str)
        out.frames.append(pd.concat([frame, kept_metadata(table)], axis=1))
        out.pii.append(
            frame_for(
                table,
                rep_map,
                rep_fields[rep_fields["pii"]],
                form,
                multi_sep,
                positional,
                labels,
                f"{repeat_name}:",
            ).assign(_parent=parent.values)
        )
    return out


def _lookup(keys: pd.Series, values: pd.Index, wanted: pd.Series) -> pd.Series:
    """``wanted.map(dict(zip(keys, values)))``: the value of each wanted key (of the last of repeated keys),
    NaN where there is none. Unique keys without blanks are looked up by one hash table instead of a
    Python dict of every key (173,000 submissions, 346,000 repeat rows: 0.45 → 0.1 s)."""
    index = pd.Index(keys)
    if not index.is_unique or index.hasnans or index.empty or wanted.empty:
        return wanted.map(dict(zip(keys, values)))
    row = index.get_indexer(wanted)
    found = pd.Series(np.asarray(values)[row], index=wanted.index, name=wanted.name)
    return found.where(row >= 0) if (row < 0).any() else found


def person_table(linked: _Persons, ids: pd.DataFrame) -> pd.DataFrame:
    """Persons in submission order with ``uuid``, ``household_id``, ``person_id`` and ``member``."""
    persons = pd.concat(linked.frames, ignore_index=True) if linked.frames else pd.DataFrame({"_parent": []})
    persons = persons.sort_values("_parent", kind="stable").reset_index(drop=True)
    member = persons.groupby("_parent").cumcount() + 1
    persons.insert(0, "uuid", persons["_parent"].map(ids["uuid"]))
    persons.insert(1, "household_id", persons["_parent"].map(ids["household_id"]))
    persons.insert(2, "person_id", persons["household_id"] + "-" + member.astype(str).str.zfill(2))
    persons.insert(3, "member", member.astype(int))
    return persons


def conversion_notes(
    hh_notes: pd.DataFrame, linked: _Persons, persons: pd.DataFrame, ids: pd.DataFrame
) -> pd.DataFrame:
    """The number-format notes of households and persons, keyed by uuid (and person_id)."""
    person_notes = (
        pd.concat(linked.notes, ignore_index=True) if linked.notes else hh_notes.iloc[:0].assign(source="")
    )
    by_source = (
        persons.set_index("_source") if "_source" in persons else pd.DataFrame(columns=["uuid", "person_id"])
    )
    return pd.concat(
        [
            hh_notes.assign(uuid=ids["uuid"].to_numpy()[hh_notes["position"].astype(int)], person_id=None),
            person_notes.assign(
                uuid=person_notes["source"].map(by_source["uuid"]),
                person_id=person_notes["source"].map(by_source["person_id"]),
            ),
        ],
        ignore_index=True,
    )[CONVERSION_COLUMNS]


def check_repeats(repeats: dict, form: Schema, path: Path, absent_repeats: tuple | list = ()) -> None:
    """Refuse an export without a table for a repeat group (its rows would be lost silently), unless the
    settings say the export has none (``absent_repeats``). Questions without a column are not an error:
    they are listed as missing."""
    absent = [r for r in repeat_names(form) if r not in repeats and r not in absent_repeats]
    if absent:
        raise IngestError(
            f"no table for the repeat group '{absent[0]}' (its sheet or {absent[0]}.csv is missing "
            f"or renamed), so its rows would be lost",
            file=path,
            hint=f"export with every repeat group: a sheet, or a CSV beside this one, named "
            f"'{absent[0]}' (or list it under absent_repeats in the cleaning settings)",
        )


def kept_metadata(table: pd.DataFrame) -> pd.DataFrame:
    """The Kobo metadata columns kept in the clean tables (``_submission_time``, ``_id``, ``_index`` …),
    as text under their Kobo names."""
    names = {h: metadata_name(h) for h in table.columns}
    kept = {n: table[h].astype(str).str.strip().replace("", None) for h, n in names.items() if n}
    return pd.DataFrame(kept, index=table.index)


# ----- personal data in free text ---------------------------------------------------------------------


def _hits(changed: pd.DataFrame, table: pd.DataFrame, with_person: bool) -> pd.DataFrame:
    hit = changed.stack()
    hit = hit[hit]
    rows = hit.index.get_level_values(0)
    return pd.DataFrame(
        {
            "uuid": table["uuid"].reindex(rows).array,
            "person_id": table["person_id"].reindex(rows).array if with_person else None,
            "question": hit.index.get_level_values(1),
        }
    )


def redact_free_text(
    households: pd.DataFrame,
    persons: pd.DataFrame,
    pii_top: pd.DataFrame,
    pii_persons: pd.DataFrame,
    ids: pd.DataFrame,
    data: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Free text (text questions without a constraint: codes such as the enumerator id are constrained)
    scrubbed of phone numbers, ID numbers and the household's own personal answers.

    Returns households, persons and one redaction row per changed answer (uuid, person_id, question, issue).
    """
    text_fields = data.loc[(data["base_type"] == "text") & ~data["pii"] & (data["constraint"] == ""), "name"]
    with_text = households[[c for c in text_fields if c in households]].notna().any(axis=1)
    if len(persons) and any(c in persons for c in text_fields):
        with_text |= households.index.isin(
            persons.loc[persons[[c for c in text_fields if c in persons]].notna().any(axis=1), "_parent"]
        )
    own = (
        own_secrets(pii_top[with_text], pii_persons[pii_persons["_parent"].isin(households.index[with_text])])
        .reindex(pii_top.index)
        .map(lambda v: v if isinstance(v, tuple) else ())
    )
    found = []
    hh_text = [c for c in text_fields if c in households]
    if hh_text:
        households[hh_text], changed = redact(households[hh_text], own)
        found.append(_hits(changed, ids, with_person=False))
    ps_text = [c for c in text_fields if c in persons]
    if ps_text:
        persons[ps_text], changed = redact(
            persons[ps_text], own.reindex(persons["_parent"]).set_axis(persons.index)
        )
        found.append(_hits(changed, persons, with_person=True))
    redactions = (
        pd.concat(found, ignore_index=True)
        if found
        else pd.DataFrame(columns=["uuid", "person_id", "question"])
    )
    redactions["issue"] = "personal data (phone, ID number or name) removed from free text"
    return households, persons, redactions


# ----- provenance -------------------------------------------------------------------------------------


def simulated_provenance(path: Path, checksums: dict[str, str]) -> dict:
    """The simulator's provenance for an export it wrote: a ``PROVENANCE.json`` in the export's folder or
    any folder above it, marked simulated, whose ``files`` map lists the sha256 of every file read.
    A real export — anywhere, ``survey/raw/`` included — matches none and gets ``{}``."""
    digests = set(checksums.values())
    folder = path.resolve().parent
    for candidate in (folder, *folder.parents):
        manifest = candidate / "PROVENANCE.json"
        if not manifest.is_file():
            continue
        try:
            content = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        listed = content.get("files") if isinstance(content, dict) else None
        if isinstance(listed, dict) and content.get("simulated") and digests <= set(listed.values()):
            return content
    return {}


# ----- the whole read ---------------------------------------------------------------------------------


def read_export(
    path: str | Path, form: Form | Schema, group_sep: str | None = None, absent_repeats: tuple | list = ()
) -> RawExport:
    """Read any supported export of ``form`` into a :class:`RawExport` (see the package docstring).

    Only the structural columns are required: the submission id and the links of repeat rows to their
    submissions (and a table for each repeat group not in ``absent_repeats``). Questions without a column
    are listed in ``missing_columns``. Raises IngestError naming the file (and row/column) for an empty or
    unreadable file, another survey's export, duplicate column names, or a missing structural column.
    """
    form = as_schema(form)
    path = locate(Path(path), form)
    fmt = detect_format(path)
    main, repeats, files, labels, unmapped_extra = read_tables(path, fmt, form)

    data = _answer_fields(form, main)
    sep, mapping = best_mapping(list(main.columns), form, group_sep)
    check_duplicate_targets(mapping, path)
    check_coverage(mapping, unmapped_extra, path)
    top = data[data["repeat"].isna()]
    multi_sep = wjx.SEPARATOR if fmt.startswith("wjx") else None
    positional = fmt.startswith("wjx")

    main, hh_notes = numbers(main, mapping.fields, top)
    households = frame_for(main, mapping, top[~top["pii"]], form, multi_sep, positional, labels)
    pii_top = frame_for(main, mapping, top[top["pii"]], form, multi_sep, positional, labels)
    ids, system = submission_ids(main, mapping, fmt, form, path)
    if "duration_seconds" in main and "end" in households:  # 问卷星: 所用时间 "528秒"
        seconds = pd.to_numeric(
            main["duration_seconds"].astype(str).str.extract(r"(\d+)")[0], errors="coerce"
        )
        households["start"] = households["end"] - pd.to_timedelta(seconds, unit="s")

    check_repeats(repeats, form, path, absent_repeats)
    linked = link_repeats(repeats, data, form, sep, system, ids, path, multi_sep, positional, labels)
    persons = person_table(linked, ids)
    conversions = conversion_notes(hh_notes, linked, persons, ids)

    pii_persons = pd.concat(linked.pii, ignore_index=True) if linked.pii else pd.DataFrame({"_parent": []})
    households, persons, redactions = redact_free_text(households, persons, pii_top, pii_persons, ids, data)

    households = pd.concat([ids, form_order(households, data), kept_metadata(main)], axis=1).reset_index(
        drop=True
    )
    person_metadata = [c for c in persons.columns if metadata_name(c)]
    persons = pd.concat(
        [
            persons[["uuid", "household_id", "person_id", "member"]],
            form_order(persons, data),
            persons[person_metadata],
        ],
        axis=1,
    )
    present = set(households.columns) | set(persons.columns)
    pii_names = set(data.loc[data["pii"], "name"])
    missing = tuple(
        n
        for n in data["name"]
        if n not in present
        and n not in pii_names
        and form.field(n)["base_type"] not in METADATA_TYPES | {"calculate"}
    )
    unmapped = [h for h in mapping.unmapped if h not in wjx.META.values()] + unmapped_extra + linked.unmapped
    checksums = {p.name: sha256(p) for p in files}
    return RawExport(
        households=households,
        persons=persons,
        source_format=fmt,
        files=tuple(files),
        checksums=checksums,
        separator=sep,
        unmapped_columns=tuple(unmapped),
        missing_columns=missing,
        redactions=redactions,
        provenance=simulated_provenance(path, checksums),
        conversions=conversions,
    )
