"""A small export of the project's instrument written in every supported format, for ingest/clean tests.

The responses are drawn from the form itself (choice names, numeric ranges), so the same rows can be
written as a Kobo .xlsx, Kobo CSVs, a 问卷星 GB18030 text-file CSV and SPSS .sav files — by the same
writers the simulator uses (:mod:`analysis.simulate.exports`; SPSS by the ingest package's ``write_sav``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.ingest import write_sav
from analysis.instrument import Form, load_form
from analysis.simulate import exports

ROOT = Path(__file__).resolve().parent.parent
FORM_DIR = ROOT / "survey" / "instrument"
NAMES = ["陈美玲", "梁志强", "何家豪", "黄丽华", "李振邦", "周小燕", "冯国栋", "区淑仪"]


def form() -> Form:
    return load_form(FORM_DIR)


def responses(form: Form, n: int = 12, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Households and roster rows by bare field name (all answers consistent with the form's logic)."""
    rng = np.random.default_rng(seed)
    hh, people = [], []
    for i in range(n):
        size = int(rng.integers(1, 5))
        start = pd.Timestamp("2012-05-02 09:00") + pd.Timedelta(hours=3 * i)
        ages = [int(rng.integers(18, 80))] + [int(rng.integers(0, 90)) for _ in range(size - 1)]
        need = rng.choice(["home_visit", "meal", "day_care", "health", "activity"], size=2, replace=False)
        care = "yes" if i % 3 == 0 else "no"
        row = {
            "_uuid": f"uuid-{i:04d}",
            "_index": i + 1,
            "start": start.isoformat(),
            "end": (start + pd.Timedelta(minutes=30 + i)).isoformat(),
            "today": start.date().isoformat(),
            "deviceid": f"dev{i % 3}",
            "enumerator": f"E{i % 4 + 1:02d}",
            "consent": "yes",
            "cunju": f"c{i % 6 + 1:02d}",
            "psu": f"c{i % 6 + 1:02d}-g0{i % 3 + 1}",
            "resp_name": NAMES[i % len(NAMES)],
            "phone": f"1380013{i:04d}",
            "address": f"勒流大道{i + 1}号",
            "id_number": f"44060619{60 + i % 30}0101{i:03d}X",
            "resp_age": ages[0],
            "resp_sex": "female" if i % 2 else "male",
            "hh_registration": ["local", "nonlocal", "mixed"][i % 3],
            "housing": "other" if i == 4 else "own",
            "housing_other": "宿舍楼" if i == 4 else None,
            "hh_size": size,
            **{
                k: str(int(rng.integers(0, 5)))
                for k in [
                    "k6_nervous",
                    "k6_hopeless",
                    "k6_restless",
                    "k6_depressed",
                    "k6_effort",
                    "k6_worthless",
                ]
            },
            "care_dependent": care,
            "caregiver_hours": int(rng.integers(2, 40)) if care == "yes" else None,
            "caregiver_strain": "yes" if care == "yes" else None,
            "family_conflict": "never",
            "parenting_stress": "na",
            "hardship": "no",
            "need_elderly": " ".join(sorted(need, key=form.choice_names("need_elderly").index)),
            "receiving_elderly": "",
            "would_use_elderly": "meal",
            "need_disability": "",
            "receiving_disability": "",
            "would_use_disability": "",
            "need_youth": "other" if i == 2 else "",
            "need_youth_other": "英语补习班" if i == 2 else None,
            "receiving_youth": "",
            "would_use_youth": "",
            "need_family": "",
            "receiving_family": "",
            "would_use_family": "parenting",
            "priorities": "elderly family",
            "aware_centre": "no",
            "comments": f"请打电话 1380013{i:04d} 找{NAMES[i % len(NAMES)]}" if i % 4 == 1 else "很好",
        }
        hh.append(row)
        for j, age in enumerate(ages):
            person = {
                "_parent_index": i + 1,
                "_index": len(people) + 1,
                "member_name": NAMES[(i + j) % len(NAMES)] if j else NAMES[i % len(NAMES)],
                "age": age,
                "sex": "male" if (i + j) % 2 else "female",
                "relation": "head" if j == 0 else ("child" if age < 40 else "spouse"),
                "registration": "local" if i % 2 else "nonlocal",
            }
            if age >= 5:
                person.update(
                    {
                        k: str(int(rng.choice([1, 1, 1, 2, 3])))
                        for k in [
                            "wg_seeing",
                            "wg_hearing",
                            "wg_walking",
                            "wg_cognition",
                            "wg_selfcare",
                            "wg_communication",
                        ]
                    }
                )
            if age >= 60:
                person.update(
                    {
                        k: "1"
                        for k in [
                            "adl_bathing",
                            "adl_dressing",
                            "adl_toileting",
                            "adl_transferring",
                            "adl_continence",
                            "adl_feeding",
                        ]
                    }
                )
                person.update(
                    {
                        k: "1"
                        for k in [
                            "iadl_telephone",
                            "iadl_shopping",
                            "iadl_food",
                            "iadl_housekeeping",
                            "iadl_laundry",
                            "iadl_transport",
                            "iadl_medication",
                            "iadl_finances",
                        ]
                    }
                )
            if 6 <= age <= 24:
                if age <= 14:
                    person["youth_afterschool"] = "yes"
                if age >= 10:
                    person.update(
                        {
                            "youth_study_pressure": "sometimes",
                            "youth_conflict": "never",
                            "youth_internet": "no",
                        }
                    )
                if age >= 16 and person["registration"] == "nonlocal":
                    person["youth_work_integration"] = "yes"
            people.append(person)
    data = form.data_fields()
    hh_cols = ["_uuid", "_index"] + data.loc[data["repeat"].isna(), "name"].tolist()
    person_cols = ["_parent_index", "_index"] + data.loc[data["repeat"].notna(), "name"].tolist()
    return pd.DataFrame(hh).reindex(columns=hh_cols), pd.DataFrame(people).reindex(columns=person_cols)


def kobo_tables(
    form: Form, hh: pd.DataFrame, people: pd.DataFrame, sep: str = "/"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows as Kobo text tables (the simulator's writer,
    :func:`analysis.simulate.exports.kobo_tables`)."""
    return exports.kobo_tables(hh, people, form, sep)


def write_kobo_xlsx(form: Form, hh: pd.DataFrame, people: pd.DataFrame, path: Path) -> Path:
    return exports.write_kobo_xlsx(*kobo_tables(form, hh, people), form, path)


def write_kobo_csv(form: Form, hh: pd.DataFrame, people: pd.DataFrame, folder: Path, sep: str = "/") -> Path:
    return exports.write_kobo_csv(*kobo_tables(form, hh, people, sep), folder, form)[0]


def write_wjx_csv(
    form: Form, hh: pd.DataFrame, people: pd.DataFrame, path: Path, with_uuid: bool = True
) -> Path:
    """A 问卷星 text-file export (GB18030); ``with_uuid`` adds the submission id as 问卷星's custom parameter
    column 自定义字段 (how a survey sent from a sample list carries its respondent key). The date and device
    questions are kept as ordinary questions, so every format holds the same fields."""
    table = exports.wjx_table(
        *kobo_tables(form, hh, people), form, respondent_key=with_uuid, unrecorded=("start", "end")
    )
    return exports.write_wjx_csv(table, path)


def write_all(form: Form, hh: pd.DataFrame, people: pd.DataFrame, folder: Path) -> dict[str, Path]:
    main, roster = kobo_tables(form, hh, people)
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "kobo_xlsx": write_kobo_xlsx(form, hh, people, folder / "kobo.xlsx"),
        "kobo_csv": write_kobo_csv(form, hh, people, folder / "csv"),
        "wjx_csv": write_wjx_csv(form, hh, people, folder / "wjx.csv"),
        "spss": write_sav(main, {"roster": roster}, form, folder / "export.sav")[0],
    }
