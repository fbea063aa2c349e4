"""问卷星 (Wenjuanxing) exports: the text file ("按选项文本") or code file ("按选项序号"), as CSV or xlsx.

Metadata columns ``序号, 提交答卷时间, 所用时间, …``; questions headed ``"<n>、<label>"`` (matched to the
form's
labels in form order, so repeated labels go to successive questions); multi-choice joined by ``┋``;
``-2``/``-3``/``(空)`` are structural missing; a custom-parameter column ``自定义字段`` (or ``uuid``) is the
submission id, else ``序号``. 问卷星 has no repeat groups: roster members are blocks of columns
``"<n>、成员<j>：<label>"``. The code file is read for single-choice position codes; its multi-choice option
columns ``"第<n>题(<option>)"`` are mapped only when question ``<n>`` also has its own column (a code file
without them reports those columns as unmapped — not tested on a real code file).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.ingest.files import read_csv, read_xlsx
from analysis.ingest.schema import Schema, repeat_names
from analysis.ingest.values import MISSING_MARKERS

META = {
    "序号": "wjx_serial",
    "uuid": "uuid",
    "自定义字段": "uuid",
    "提交答卷时间": "end",
    "所用时间": "duration_seconds",
    "来源": None,
    "来源详情": None,
    "来自IP": None,
    "总分": None,
    "答题序号": None,
    "来自": None,
}
MEMBER = re.compile(r"^成员(\d+)[-_—:：](.+)$")
SEPARATOR = "┋"  # between the options of a multi-choice answer


def tables(path: Path, fmt: str) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], list[Path]]:
    """The single 问卷星 table (no repeat tables) and the file read."""
    table = read_csv(path) if fmt == "wjx_csv" else next(iter(read_xlsx(path).values()))
    return table, {}, [path]


def _header(header: str) -> str:
    """A 问卷星 header without its question number: "12、年龄" -> "年龄"; "第5题(其他)" kept."""
    return re.sub(r"^\d+[、.．：:]\s*", "", header.strip())


def wjx_column(label: str, number: int, member: int | None = None) -> str:
    """The header 问卷星 shows for a question: ``"<n>、<label>"``, roster members
    ``"<n>、成员<j>-<label>"``."""
    return f"{number}、成员{member}-{label}" if member else f"{number}、{label}"


def _match_in_order(labels: list[str], fields: pd.DataFrame) -> list[str | None]:
    """Field name for each header label, matching labels to the form's fields in form order, so that
    repeated labels ("其他需要，请注明") go to successive fields."""
    keys = [
        {str(r.label_zh).strip(), str(r.label_en).strip(), r.name} - {""}
        for r in fields.itertuples(index=False)
    ]
    names = fields["name"].tolist()
    out, pointer = [], 0
    for label in labels:
        hit = next((k for k in range(pointer, len(names)) if label in keys[k]), None)
        if hit is None:  # out of order: first match anywhere
            hit = next((k for k in range(len(names)) if label in keys[k]), None)
        out.append(None if hit is None else names[hit])
        pointer = pointer if hit is None else hit + 1
    return out


def to_kobo(table: pd.DataFrame, form: Schema) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], list[str]]:
    """Rename a 问卷星 table's headers to bare field names; split roster members into a repeat table."""
    data = form.data_fields()
    top, in_repeat = data[data["repeat"].isna()], data[data["repeat"].notna()]
    multi = {n: form.lookup(n) for n in data.loc[data["base_type"] == "select_multiple", "name"]}
    headers = [h for h in table.columns if h not in META]
    member = {h: MEMBER.match(_header(h)) for h in headers}
    main_headers = [h for h in headers if not member[h] and not re.match(r"^第\d+题\(", h.strip())]
    main_names = _match_in_order([_header(h) for h in main_headers], top)
    renamed = table[[h for h in table.columns if META.get(h)]].rename(columns=META)
    question_of, unmapped = {}, []
    for header, name in zip(main_headers, main_names):
        if name is None:
            unmapped.append(header)
            continue
        renamed[name] = table[header]
        number = re.match(r"^(\d+)[、.．：:]", header.strip())
        if number:
            question_of[number.group(1)] = name
    for header in headers:  # code-file multi-choice columns: 第<n>题(<option label>) -> <field>/<option>
        hit = re.match(r"^第(\d+)题\((.+)\)$", header.strip())
        if not hit:
            continue
        target = question_of.get(hit.group(1))
        if target in multi and hit.group(2).strip() in multi[target]:
            renamed[f"{target}/{multi[target][hit.group(2).strip()]}"] = table[header]
        else:
            unmapped.append(header)
    parent = (
        table["序号"].astype(str)
        if "序号" in table
        else pd.Series(np.arange(1, len(table) + 1), index=table.index).astype(str)
    )
    long = []
    for j in sorted({int(m.group(1)) for m in member.values() if m}):
        cols = [h for h in headers if member[h] and int(member[h].group(1)) == j]
        names = _match_in_order([member[h].group(2).strip() for h in cols], in_repeat)
        unmapped += [h for h, n in zip(cols, names) if n is None]
        part = pd.DataFrame({n: table[h] for h, n in zip(cols, names) if n}, index=table.index)
        present = part.apply(lambda c: ~c.astype(str).str.strip().isin(MISSING_MARKERS | {""})).any(axis=1)
        long.append(part.assign(parent_index=parent, _member=j)[present])
    repeats = {}
    if long and repeat_names(form):
        members = pd.concat(long).sort_index(kind="stable")
        repeats[repeat_names(form)[0]] = members.drop(columns="_member").reset_index(drop=True)
    renamed["index"] = parent
    return renamed, repeats, unmapped
