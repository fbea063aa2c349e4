"""Submissions as the form records them (metadata, fake personal data, refusals) and the data faults
planted in them, each listed once in the fault manifest (``simulation/faults.csv``).

Personal data are fake but realistic in form, so that privacy scans are meaningful: names from common
surnames, phones in a 0000 block, ID numbers with a valid GB 11643 check digit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.simulate.exports import as_text
from analysis.simulate.params import K6, interview_first_day
from analysis.simulate.population import Population
from analysis.simulate.sample import Sample

FAULTS = {  # kind: what was done (survey/README.md's fault table is generated from this)
    "exact_duplicate": "a submission sent twice: identical row and roster, same `_uuid`, new `_id`/`_index`",
    "soft_duplicate": "a copy with a new `_uuid`, one K6 item changed, later submission time "
    "(`original_value` = "
    "source uuid)",
    "speeder": "`end` moved to 4–15 minutes after `start` (cleaningtools flags < 25 min)",
    "sentinel": '99 / 999 typed into `hh_size`, `resp_age`, a roster `age`, or "99" into a K6 item',
    "out_of_range": "respondent aged 12–17, member aged 115–139, or caregiving 170–399 h/week (with "
    "`care_dependent` set to yes)",
    "impossible_value": "a child older than the head (head + 20), or a head aged 3",
    "skip_logic": "`caregiver_hours` when `care_dependent = no`, or `adl_bathing` for a member under 60",
    "roster_inconsistency": "`hh_size` raised by 1–2 above the number of roster rows",
    "other_matches_option": '"other" ticked with text equal to an existing option\'s label',
    "cunju_variant": "村居 written as a variant: traditional characters (黃連社區), "
    "leading/inner/full-width spaces, "
    "upper-case code",
    "pii_in_text": "a phone number and the respondent's name typed into `comments`",
    "test_submission": "three test submissions before fieldwork (enumerator `E00`, name 测试)",
    "no_consent": "a refused interview: `consent = no`, everything else blank",
}
FAULT_KINDS = list(FAULTS)
SURNAMES = list("陈李黄梁何罗张林周吴郭冯麦苏潘杨刘胡邓谢")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰志红文")
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])  # GB 11643-1999 check digit
ID_CHECK = np.array(list("10X98765432"))
TRADITIONAL = {"黄连社区": "黃連社區", "勒流社区": "勒流社區", "龙眼": "龍眼", "冲鹤村": "沖鶴村"}


def _fake_names(rng, n):
    """Synthetic two- or three-character Chinese names from common surnames (not real people)."""
    given_len = np.where(rng.random(n) < 0.7, 2, 1)
    s = np.asarray(SURNAMES)[rng.integers(0, len(SURNAMES), n)]
    g1 = np.asarray(GIVEN)[rng.integers(0, len(GIVEN), n)]
    g2 = np.where(given_len == 2, np.asarray(GIVEN)[rng.integers(0, len(GIVEN), n)], "")
    return np.char.add(np.char.add(s, g1), g2)


def _fake_phones(rng, n):
    """11-digit mobile numbers 1[3589]x-0000-xxxx: valid in form, the 0000 block marks them synthetic."""
    prefix = np.char.add("1", np.asarray(list("3589"))[rng.integers(0, 4, n)])
    return np.char.add(
        np.char.add(np.char.add(prefix, rng.integers(0, 10, n).astype(str)), "0000"),
        np.char.zfill(rng.integers(0, 10000, n).astype(str), 4),
    )


def _fake_ids(rng, ages, survey_year: int):
    """18-digit resident ID numbers: Shunde area code 440606, birth date from the age in the survey year,
    sequence 9xx, and a valid GB 11643 check digit (so format checks pass and PII scans are meaningful)."""
    n = len(ages)
    year = survey_year - np.asarray(ages, dtype=int)
    month, day = rng.integers(1, 13, n), rng.integers(1, 29, n)
    body = np.char.add(
        np.char.add(
            np.char.add(np.char.add("440606", year.astype(str)), np.char.zfill(month.astype(str), 2)),
            np.char.zfill(day.astype(str), 2),
        ),
        np.char.add("9", np.char.zfill(rng.integers(0, 100, n).astype(str), 2)),
    )
    digits = np.frombuffer(body.astype("S17").tobytes(), dtype=np.uint8).reshape(n, 17) - ord("0")
    return np.char.add(body, ID_CHECK[(digits * ID_WEIGHTS).sum(axis=1) % 11])


def _uuids(rng, n):
    """Version-4 UUID strings from the generator's random bytes (deterministic in the seed)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexes = [row.tobytes().hex() for row in raw]
    return np.array([f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in hexes])


def submissions(sample: Sample, population: Population, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Submissions as the form records them: clean answers plus metadata, PII and refusals (consent = no)."""
    p = population.params["interview"]
    hh, persons = sample.households.copy(), sample.persons.copy()
    refused = sample.issued[~sample.issued["responded"]]
    refused = refused[rng.random(len(refused)) < population.params["sample"]["refusal_share_of_nonresponse"]]
    refusals = pd.DataFrame(
        {
            "household_id": refused["household_id"].to_numpy(),
            "consent": "no",
            "_psu": refused["psu"].to_numpy(),
        }
    )
    hh["_psu"] = hh["psu"]
    records = pd.concat([hh, refusals], ignore_index=True)
    n = len(records)
    records["_uuid"] = _uuids(rng, n)
    psus = np.sort(records["_psu"].unique())
    psu_day = pd.Series(rng.integers(0, p["n_days"], len(psus)), index=psus)
    psu_enum = pd.Series(rng.integers(1, p["n_enumerators"] + 1, len(psus)), index=psus)
    day = records["_psu"].map(psu_day).to_numpy() + (rng.random(n) < p["next_day_share"])
    first_day = pd.Timestamp(interview_first_day(population.params, population.year))
    start = (
        first_day
        + pd.to_timedelta(day, unit="D")
        + pd.to_timedelta(rng.integers(9 * 3600, 19 * 3600, n), unit="s")
    )
    minutes = np.clip(
        p["duration_median_min"] * np.exp(rng.normal(0, p["duration_sigma"], n)),
        p["duration_min"],
        p["duration_max"],
    )
    minutes = np.where(records["consent"] == "no", rng.uniform(1, 4, n), minutes)
    records["start"] = start
    records["end"] = start + pd.to_timedelta(np.round(minutes * 60), unit="s")
    records["_submission_time"] = records["end"] + pd.to_timedelta(rng.integers(30, 6 * 3600, n), unit="s")
    enum = records["_psu"].map(psu_enum).to_numpy()
    records["enumerator"] = np.char.add("E", np.char.zfill(enum.astype(str), 2))
    devices = np.array([f"collect:{rng.bytes(8).hex()}" for _ in range(p["n_enumerators"] + 1)])
    records["deviceid"] = devices[enum]
    ok = records["consent"] == "yes"
    names = _fake_names(rng, len(persons))
    persons["member_name"] = names
    persons = persons.merge(records[["household_id", "_uuid"]], on="household_id", how="left")
    first_adult = persons[persons["age"] >= 18].groupby("household_id", sort=False)["member_name"].first()
    records["resp_name"] = records["household_id"].map(first_adult).where(ok, None)
    records["phone"] = np.where(ok, _fake_phones(rng, n), None)
    given = ok & (rng.random(n) < p["id_number_given"])
    records["id_number"] = np.where(
        given, _fake_ids(rng, records["resp_age"].fillna(40), first_day.year), None
    )
    cunju_names = population.cunju.set_index("cunju")["name_zh"]
    group_no = records["psu"].astype(str).str[-2:].str.lstrip("0")
    records["address"] = (
        "勒流街道"
        + records["cunju"].map(cunju_names).fillna("")
        + group_no
        + "组"
        + pd.Series(rng.integers(1, 200, n).astype(str), index=records.index)
        + "号"
    ).where(ok, None)
    return records, persons


def _fault(rows, uuid, field_name, kind, original, injected, member=None):
    """One manifest row; values rendered as the Kobo export shows them (times as Kobo timestamps)."""

    def shown(value):
        if isinstance(value, pd.Timestamp):
            return value.strftime("%Y-%m-%dT%H:%M:%S.000+08:00")
        return as_text(pd.Series([value], dtype=object)).iloc[0]

    rows.append(
        {
            "uuid": uuid,
            "field": field_name,
            "member": "" if member is None else str(member),
            "kind": kind,
            "original_value": shown(original),
            "injected_value": shown(injected),
        }
    )


def inject_faults(records, persons, population, rng, form):
    """Plant every fault kind in the submissions; returns (records, persons, manifest).

    Each field-level fault goes to a different consenting household. Rates come from simulation.yaml
    ``faults`` (docs/sources.md §8 for sentinel codes, soft duplicates and speeders; the rest ASSUMPTION).
    """
    f = population.params["faults"]
    services = population.services
    teams = list(services)
    rows = []
    records, persons = records.copy(), persons.copy()
    ok_idx = np.flatnonzero(records["consent"].to_numpy() == "yes")
    pool = list(rng.permutation(ok_idx))
    n_ok = len(ok_idx)

    def take(rate):
        k = max(1, round(rate * n_ok))
        picked = [pool.pop() for _ in range(min(k, len(pool)))]
        return picked

    def set_value(i, column, value, kind):
        _fault(rows, records.at[i, "_uuid"], column, kind, records.at[i, column], value)
        records.at[i, column] = value

    members = persons.groupby("household_id").indices

    def set_person(j, column, value, kind):
        position = int(np.flatnonzero(members[persons.at[j, "household_id"]] == j)[0]) + 1
        _fault(rows, persons.at[j, "_uuid"], column, kind, persons.at[j, column], value, member=position)
        persons.at[j, column] = value

    for i in take(f["speeder"]):
        set_value(
            i, "end", records.at[i, "start"] + pd.Timedelta(seconds=int(rng.integers(240, 900))), "speeder"
        )
    for n_i, i in enumerate(take(f["sentinel"])):
        choice = n_i % 4
        if choice == 0:
            set_value(i, "hh_size", 99, "sentinel")
        elif choice == 1:
            set_value(i, str(rng.choice(K6)), "99", "sentinel")
        elif choice == 2:
            set_value(i, "resp_age", int(rng.choice([99, 999])), "sentinel")
        else:
            j = members[records.at[i, "household_id"]][0]
            set_person(j, "age", 999, "sentinel")
    for n_i, i in enumerate(take(f["out_of_range"])):
        if n_i % 3 == 0:
            set_value(i, "resp_age", int(rng.integers(12, 18)), "out_of_range")
        elif n_i % 3 == 1:
            set_person(
                members[records.at[i, "household_id"]][-1], "age", int(rng.integers(115, 140)), "out_of_range"
            )
        else:
            set_value(i, "caregiver_hours", int(rng.integers(170, 400)), "out_of_range")
            if records.at[i, "care_dependent"] != "yes":
                _fault(
                    rows,
                    records.at[i, "_uuid"],
                    "care_dependent",
                    "out_of_range",
                    records.at[i, "care_dependent"],
                    "yes",
                )
                records.at[i, "care_dependent"] = "yes"
    for i in take(f["impossible_value"]):
        idx = members[records.at[i, "household_id"]]
        head_age = persons.at[idx[0], "age"]
        child = [j for j in idx if persons.at[j, "relation"] == "child"]
        if child:
            set_person(child[0], "age", int(min(head_age + 20, 110)), "impossible_value")
        else:
            set_person(idx[0], "age", 3, "impossible_value")  # a household head aged 3
    for _n_i, i in enumerate(take(f["skip_logic"])):
        if records.at[i, "care_dependent"] == "no":
            set_value(i, "caregiver_hours", int(rng.integers(5, 40)), "skip_logic")
        else:
            idx = members[records.at[i, "household_id"]]
            young = [j for j in idx if persons.at[j, "age"] < 60]
            j = young[0] if young else idx[0]
            set_person(j, "adl_bathing", "1", "skip_logic")
    for i in take(f["roster_inconsistency"]):
        set_value(
            i, "hh_size", int(records.at[i, "hh_size"]) + int(rng.integers(1, 3)), "roster_inconsistency"
        )
    labels = form.choices.set_index(["list_name", "name"])["label_zh"]
    for i in take(f["other_matches_option"]):
        team = str(rng.choice(teams))
        unselected = [s for s in services[team] if records.at[i, f"need_{team}.{s}"] == 0]
        service = unselected[0] if unselected else services[team][0]
        text = labels[(f"{team}_services", service)]
        if records.at[i, f"need_{team}.other"] != 1:
            records.at[i, f"need_{team}.other"] = 1
            records.at[i, f"need_{team}"] = (str(records.at[i, f"need_{team}"]) + " other").strip()
        set_value(i, f"need_{team}_other", text, "other_matches_option")
    names = population.cunju.set_index("cunju")["name_zh"]
    for i in take(f["cunju_variant"]):
        code = records.at[i, "cunju"]
        name = names[code]
        variants = [
            TRADITIONAL.get(name, name),
            f" {name}",
            f"{name[:2]} {name[2:]}" if len(name) > 2 else f"{name} ",
            name + "　",
            code.upper(),
        ]
        set_value(i, "cunju", variants[int(rng.integers(0, len(variants)))], "cunju_variant")
    for i in take(f["pii_in_text"]):
        phone = _fake_phones(rng, 1)[0]
        set_value(i, "comments", f"有需要请打电话{phone}找{records.at[i, 'resp_name']}", "pii_in_text")

    # duplicates copy households that carry no other fault, so each planted fault is listed exactly once
    originals = np.array([pool.pop() for _ in range(max(1, round(f["exact_duplicate"] * n_ok)))])
    extra, extra_persons = [], []
    for i in originals:
        extra.append(records.loc[[i]])
        extra_persons.append(persons[persons["_uuid"] == records.at[i, "_uuid"]])
        _fault(rows, records.at[i, "_uuid"], "record", "exact_duplicate", "", "second identical submission")
    soft = np.array([pool.pop() for _ in range(max(1, round(f["soft_duplicate"] * n_ok)))])
    new_ids = _uuids(rng, len(soft))
    for i, new_id in zip(soft, new_ids):
        copy = records.loc[[i]].copy()
        copy["_uuid"] = new_id
        item = str(rng.choice(K6))
        old = copy[item].iloc[0]
        copy[item] = str((int(old) + 1) % 5) if old is not None and str(old).isdigit() else "1"
        copy["_submission_time"] = copy["_submission_time"] + pd.Timedelta(hours=int(rng.integers(1, 48)))
        extra.append(copy)
        extra_persons.append(persons[persons["_uuid"] == records.at[i, "_uuid"]].assign(_uuid=new_id))
        _fault(
            rows,
            new_id,
            "record",
            "soft_duplicate",
            records.at[i, "_uuid"],
            f"copy of {records.at[i, '_uuid']}; {item} changed",
        )
    test_ids = _uuids(rng, f["test_submissions"])
    first_day = pd.Timestamp(interview_first_day(population.params, population.year))
    for k, test_id in enumerate(test_ids):
        start = first_day - pd.Timedelta(days=3 - k) + pd.Timedelta(hours=10)
        test = pd.DataFrame(
            {
                "_uuid": [test_id],
                "consent": ["yes"],
                "enumerator": ["E00"],
                "deviceid": ["collect:test"],
                "start": [start],
                "end": [start + pd.Timedelta(minutes=2)],
                "_submission_time": [start + pd.Timedelta(minutes=3)],
                "cunju": ["c01"],
                "psu": ["c01-g01"],
                "resp_name": ["测试"],
                "resp_age": [30],
                "resp_sex": ["male"],
                "hh_size": [1],
                "comments": ["test 测试"],
                "household_id": [f"test{k}"],
            }
        )
        extra.append(test)
        extra_persons.append(
            pd.DataFrame(
                {
                    "_uuid": [test_id],
                    "household_id": [f"test{k}"],
                    "person_id": [f"test{k}-01"],
                    "member_name": ["测试"],
                    "age": [30],
                    "sex": ["male"],
                    "relation": ["head"],
                    "registration": ["local"],
                }
            )
        )
        _fault(rows, test_id, "record", "test_submission", "", "test")
    for i in np.flatnonzero(records["consent"].to_numpy() == "no"):
        _fault(rows, records.at[i, "_uuid"], "consent", "no_consent", "", "no")
    records = pd.concat([records, *extra], ignore_index=True)
    persons = pd.concat([persons, *extra_persons], ignore_index=True)
    manifest = pd.DataFrame(
        rows, columns=["uuid", "field", "member", "kind", "original_value", "injected_value"]
    )
    return records, persons, manifest
