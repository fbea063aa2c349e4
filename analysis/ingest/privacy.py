"""Personal data removed at the door: mobile numbers, ID numbers and the household's own personal answers
(names, address) in free text are replaced by :data:`REDACTED`; keys are pseudonymous hashes."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd

REDACTED = "[已删除/removed]"
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def own_secrets(pii_top: pd.DataFrame, pii_persons: pd.DataFrame) -> pd.Series:
    """Per submission (index of the main table), the personal answers it gave (names, address …) that
    are at least 2 characters long, longest first (then in text order, so that the scrubbing is the same
    in every run), as a tuple to scrub from its free text."""
    long = (
        pd.concat([pii_top.stack(), pii_persons.set_index("_parent").stack()])
        if len(pii_persons.columns) > 1
        else pii_top.stack()
    )
    long = long[long.astype(str).str.strip().str.len() >= 2].astype(str).str.strip()
    table = pd.DataFrame(
        {"row": long.index.get_level_values(0), "secret": long.to_numpy(dtype=object)}
    ).drop_duplicates()
    table["length"] = table["secret"].str.len()
    table = table.sort_values(["row", "length", "secret"], ascending=[True, False, True], kind="stable")
    rows, secrets = table["row"].to_numpy(), table["secret"].tolist()
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else np.zeros(0, dtype=int)
    ends = np.r_[starts[1:], len(rows)]
    grouped = pd.Series([tuple(secrets[a:b]) for a, b in zip(starts, ends)], index=rows[starts], dtype=object)
    return grouped.reindex(pii_top.index).map(lambda v: v if isinstance(v, tuple) else ())


def _scrub(text: str, secrets: tuple) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def redact(texts: pd.DataFrame, own: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replace phone numbers, ID numbers and the row's own personal answers in free text with REDACTED.

    Only answered cells are touched. Returns the cleaned texts and a boolean frame of changed cells.
    """
    cleaned = texts.astype(object).copy()
    for col in texts.columns:
        answered = texts[col].notna()
        text = texts.loc[answered, col].astype(str)
        text = text.str.replace(PHONE, REDACTED, regex=True).str.replace(ID_NUMBER, REDACTED, regex=True)
        text = pd.Series([_scrub(t, o) for t, o in zip(text, own[answered])], index=text.index, dtype=object)
        cleaned.loc[answered, col] = text
    changed = cleaned.fillna("").ne(texts.astype(object).fillna(""))
    return cleaned, changed


def household_keys(uuids: pd.Series, salt: str) -> pd.Series:
    """Pseudonymous household key: a BLAKE2b hash of the uuid keyed by the form id (stable, not reversible
    without the uuid)."""
    key = salt.encode("utf-8")[:64]
    return uuids.map(lambda u: "H" + hashlib.blake2b(u.encode("utf-8"), key=key, digest_size=5).hexdigest())


def unique_uuids(uuids: pd.Series) -> pd.Series:
    """Repeated uuids get ``#2``, ``#3`` … in file order so every submission keeps its own key."""
    copy = uuids.groupby(uuids).cumcount() + 1
    return uuids.where(copy == 1, uuids + "#" + copy.astype(str))
