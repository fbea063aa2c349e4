"""Checks against the simulator's planted truth: what tests and the notebooks' validation sections compare.

Owns: finding the planted truth and fault manifest of a simulated export (:func:`planted`), reading the
truth in the results' terms (:func:`read_truth`, :func:`truth_table`), headline estimates beside the
truth with their intervals (:func:`compare_with_truth`), the weighting steps beside the truth
(:func:`weighting_against_truth`), and how well the cleaning finds the planted faults
(:func:`fault_detection`, :func:`false_positives_by_check`).

Truth is used only when the clean stage recorded the export as simulated (``clean/provenance.json``,
decided by the simulator's checksums, not by where the file lies), and only the truth the simulator
wrote beside that very export (the checksums of ``PROVENANCE.json`` must list the cleaned files and the
truth file). A real survey has no planted truth: :func:`planted` returns None.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.survey.intervals import critical, logit_interval, wald

TRUTH_COLUMNS = {"team", "variable", "group", "group_value", "count", "denominator", "proportion"}


# ----- where the planted truth of an export is -------------------------------------------------------------


def is_simulated(out: str | Path) -> bool:
    """True when the clean stage recorded, in ``<out>/clean/provenance.json``, that the export is
    simulated."""
    path = Path(out) / "clean" / "provenance.json"
    if not path.exists():
        return False
    return bool(json.loads(path.read_text(encoding="utf-8")).get("simulated", False))


@dataclass(frozen=True)
class Planted:
    """The simulator's files beside a simulated export: planted truth and injected-fault manifest."""

    truth: Path
    faults: Path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def planted(data: str | Path, out: str | Path) -> Planted | None:
    """The planted truth and fault manifest of the export ``data`` cleaned into ``out``, or None.

    None unless the clean stage marked the export simulated. The simulator writes ``raw/PROVENANCE.json``
    (with the sha256 of every file it wrote) and ``simulation/truth.csv`` and ``faults.csv`` beside
    ``raw/``; the manifest is the first one above the export that lists every raw file the clean stage
    read, and the truth and faults must be the files it lists.
    """
    provenance = Path(out) / "clean" / "provenance.json"
    if not is_simulated(out):
        return None
    digests = set(json.loads(provenance.read_text(encoding="utf-8")).get("raw_sha256", {}).values())
    folder = Path(data).resolve()
    folder = folder if folder.is_dir() else folder.parent
    for candidate in (folder, *folder.parents):
        manifest = candidate / "PROVENANCE.json"
        if not manifest.is_file():
            continue
        listed = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
        if not digests or not digests <= set(listed.values()):
            continue
        files = Planted(
            truth=candidate.parent / "simulation" / "truth.csv",
            faults=candidate.parent / "simulation" / "faults.csv",
        )
        for name, path in (("truth", files.truth), ("faults", files.faults)):
            if not path.is_file() or _sha256(path) != listed.get(name):
                raise AnalysisError(
                    f"the simulator's {name} file is missing or changed since it was written",
                    file=str(path),
                    hint=f"regenerate the survey (python -m analysis simulate); "
                    f"{manifest} lists its checksum",
                )
        return files
    raise AnalysisError(
        "the export is marked simulated but no simulator PROVENANCE.json above it lists its files",
        file=str(data),
        hint="pass --data the export the clean stage read",
    )


# ----- the truth in the results' terms ----------------------------------------------------------------------


def read_truth(path: str | Path, definitions: dict) -> pd.DataFrame:
    """The planted truth file (``survey/simulation/truth.csv``) in the results' terms
    (:func:`truth_table`)."""
    try:
        raw = pd.read_csv(path, dtype={"group_value": str})
    except OSError as error:
        raise AnalysisError(f"cannot read the planted truth: {error}", file=str(path)) from None
    missing = TRUTH_COLUMNS - set(raw.columns)
    if missing:
        raise AnalysisError(f"truth table lacks columns {sorted(missing)}", file=str(path))
    return truth_table(raw, definitions)


def truth_table(raw: pd.DataFrame, definitions: dict) -> pd.DataFrame:
    """The planted truth (:func:`analysis.simulate.truth`) in the results' terms.

    Returns team, variable, value, group, group_value, analysis_type (prop/total) and ``truth``.
    Service rows ``need:<service>`` become variable ``need_<team>``, value ``<service>``; the truth's
    ``unmet_<team>`` share (of the whole target group) is turned into the share of those in need,
    as estimated here.
    """
    raw = raw[raw["team"].isin(list(definitions["teams"]))]
    service = raw["variable"].str.contains(":")
    measure = raw["variable"].str.split(":").str[0]
    raw = raw.assign(
        variable=np.where(service, measure + "_" + raw["team"], raw["variable"]),
        value=np.where(service, raw["variable"].str.split(":").str[-1], "1"),
    )
    keys = ["team", "group", "group_value"]
    in_need = raw[raw["variable"] == "in_need_" + raw["team"]].set_index(keys)["count"]
    unmet = raw["variable"] == "unmet_" + raw["team"]
    need_count = pd.MultiIndex.from_frame(raw.loc[unmet, keys]).map(in_need.to_dict())
    need_count = pd.Series(np.asarray(need_count, dtype=float), index=raw.index[unmet])
    raw.loc[unmet, "proportion"] = raw.loc[unmet, "count"] / need_count.where(need_count > 0)
    long = pd.concat(
        [
            raw.assign(analysis_type="prop", truth=raw["proportion"]),
            raw.assign(analysis_type="total", truth=raw["count"]),
        ],
        ignore_index=True,
    )
    return long[["team", "variable", "value", "group", "group_value", "analysis_type", "truth"]]


def compare_with_truth(results: pd.DataFrame, truth: pd.DataFrame, level: float = 0.99) -> pd.DataFrame:
    """Headline estimates (each team's ``in_need``, ``unmet`` and ``need_any``, share and number, all of
    Leliu)
    beside the planted truth, with the ``level`` interval (logit for shares, t with the estimate's df for
    numbers) and whether it covers the truth (``inside_<level%>``). ``results`` must carry ``df`` (the
    unsuppressed estimates of the demand stage)."""
    headline_row = np.array(
        [
            variable in (f"in_need_{team}", f"unmet_{team}", f"need_any_{team}")
            for variable, team in zip(results["variable"], results["team"])
        ],
        dtype=bool,
    )
    head = results[(results["group"] == "all") & headline_row]
    keys = ["team", "variable", "value", "group", "group_value", "analysis_type"]
    out = head.merge(truth, on=keys, how="left", validate="one_to_one")
    pct = round(level * 100)
    low, high = logit_interval(out["estimate"], out["se"], out["df"], level)
    wald_low, wald_high = wald(out["estimate"], out["se"], critical(level, out["df"]))
    prop = (out["analysis_type"] == "prop").to_numpy()
    out[f"ci{pct}_low"] = np.where(prop, low, wald_low)
    out[f"ci{pct}_high"] = np.where(prop, high, wald_high)
    out[f"inside_{pct}"] = (out["truth"] >= out[f"ci{pct}_low"]) & (out["truth"] <= out[f"ci{pct}_high"])
    return out[
        [
            "team",
            "variable",
            "analysis_type",
            "universe",
            "estimate",
            "se",
            f"ci{pct}_low",
            f"ci{pct}_high",
            "truth",
            f"inside_{pct}",
            "n",
        ]
    ]


def weighting_against_truth(compare: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The headline prevalences under each weighting step (``compare``: team, variable, one column per
    step) with the planted ``truth`` beside them and which step comes closest."""
    planted_rows = truth.query("group == 'all' and analysis_type == 'prop' and value == '1'")
    out = compare.merge(planted_rows[["team", "variable", "truth"]], on=["team", "variable"], how="left")
    steps = [c for c in compare.columns if c not in ("team", "variable")]
    gaps = out[steps].sub(out["truth"], axis=0).abs()
    return out.assign(closest=gaps.idxmin(axis=1))


# ----- the cleaning against the planted faults --------------------------------------------------------------


def _log_with_base(cleaning_log: pd.DataFrame) -> pd.DataFrame:
    """The log with ``base``: the submission uuid without the ``#n`` a duplicated copy carries."""
    return cleaning_log.assign(base=cleaning_log["uuid"].str.replace(r"#\d+$", "", regex=True))


def fault_detection(result, faults: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Share of planted faults found, by kind, and share of fault-free submissions flagged.

    ``result`` is the clean stage's :class:`analysis.clean.CleanResult`, ``faults`` the manifest
    (``simulation/faults.csv``). A fault counts as found when the cleaning log removes its submission
    (``#n`` copies count as their uuid), or has a row for its question in that submission, or (roster
    faults) for that member. Returns (per-kind table, summary with the false-positive rate over
    fault-free submissions: any log row, and any action).
    """
    log = _log_with_base(result.cleaning_log)
    whole = set(log.loc[log["change_type"] == "remove_survey", "base"])
    cells = set(zip(log["base"], log["question"].fillna("")))
    people = log[log["person_id"].notna()]
    members = set(zip(people["base"], people["person_id"].str.extract(r"-(\d+)$")[0].astype(int)))
    faults = faults.assign(field=faults["field"].fillna("").astype(str))
    member = (
        pd.to_numeric(faults["member"], errors="coerce")
        if "member" in faults
        else pd.Series(np.nan, index=faults.index)
    )
    found = [
        (u in whole) or ((u, f) in cells) or (pd.notna(m) and (u, int(m)) in members)
        for u, f, m in zip(faults["uuid"], faults["field"], member)
    ]
    faults = faults.assign(found=found, member=member.fillna(0))
    # one fault = one planted event: a kind in a submission (and member); some change two cells, e.g. an
    # out-of-range caregiving hours value plus the 'yes' that makes the question relevant
    events = faults.groupby(["kind", "uuid", "member"], as_index=False)["found"].any()
    by_kind = events.groupby("kind").agg(faults=("found", "size"), found=("found", "sum")).reset_index()
    by_kind["rate"] = by_kind["found"] / by_kind["faults"]
    clean_ids = _fault_free(result, faults)
    flagged = clean_ids & set(log["base"])
    acted = clean_ids & set(log.loc[log["change_type"] != "no_action", "base"])
    summary = {
        "fault_free_submissions": len(clean_ids),
        "flagged": len(flagged),
        "false_positive_rate": len(flagged) / max(len(clean_ids), 1),
        "changed": len(acted),
        "false_change_rate": len(acted) / max(len(clean_ids), 1),
    }
    return by_kind, summary


def _fault_free(result, faults: pd.DataFrame) -> set[str]:
    """Submissions (uuid without ``#n``) in which the simulator planted no fault."""
    raw_uuid = result.raw.households["uuid"].str.replace(r"#\d+$", "", regex=True)
    return set(raw_uuid) - set(faults["uuid"])


def false_positives_by_check(result, faults: pd.DataFrame) -> pd.DataFrame:
    """Which checks flag fault-free submissions: per ``check_id`` and ``change_type``, the number of
    fault-free submissions with such a log row (a submission flagged by two checks counts under both)."""
    log = _log_with_base(result.cleaning_log)
    flagged = log[log["base"].isin(_fault_free(result, faults))]
    table = flagged.groupby(["check_id", "change_type"])["base"].nunique().rename("submissions").reset_index()
    return table.sort_values(["submissions", "check_id"], ascending=[False, True], ignore_index=True)
