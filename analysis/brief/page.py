"""The one-page leadership brief: three numbers, one staffing sentence, four figures, the assumptions.

Built from the stage outputs only (demand results, staffing tables, clean data): every number on the
page is computed here from those tables, none is typed in. Chinese first, English alongside. The HTML is
self-contained so a planner can email it: figures are embedded PNGs and the Chinese font is embedded as
a subset of Noto Sans CJK SC holding exactly the characters the page uses, so it renders on a machine
without Chinese fonts. The page is the jinja2 template ``template.html`` with autoescaping on; a PDF is
printed with headless Chromium (``chromium.py``) when it is installed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import re
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from analysis import config, figures
from analysis.brief.chromium import print_pdf
from analysis.errors import AnalysisError

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
BRIEF_INCHES = (9.0, 5.0625)  # 16:9, two per row on A4
BRIEF_DPI = 200
FONT_FAMILY = "Leliu Noto Sans SC"


def key_numbers(results: pd.DataFrame, allocation: pd.DataFrame, replicates: pd.DataFrame) -> dict:
    """The three numbers that matter and the recommendation, computed from the stage outputs.

    - the team with the most residents in need: ``in_need_<team>`` total with its 95% CI, among the teams
      counted in persons (family need is counted in households, which are not comparable with persons);
    - WISN required social workers (sum over teams) against the plan (sum of the allocation);
    - the share of bootstrap replicates whose social-worker split equals the recommended one.
    """
    rows = results[
        (results["analysis_type"] == "total")
        & (results["group"] == "all")
        & (results["variable"] == "in_need_" + results["team"].astype(str))
    ]
    if rows.empty:
        raise AnalysisError(
            "no in_need_<team> totals in the results",
            file="demand/results.csv",
            column="variable",
            hint="rerun notebook 03_demand",
        )
    persons = rows[rows["unit"] == "persons"]
    top = (persons if persons["estimate"].notna().any() else rows).pipe(
        lambda r: r.loc[r["estimate"].idxmax()]
    )
    figures.require_columns(allocation, "allocation")
    figures.require_columns(replicates, "replicate_allocations")
    order = list(allocation["team"])
    split = allocation.set_index("team").loc[order, "social_workers"].astype(int)
    wide = replicates.pivot(index="replicate", columns="team", values="social_workers")[order]
    agree = float((wide.to_numpy() == split.to_numpy()).all(axis=1).mean())
    planned = int(split.sum())
    return {
        "team": top["team"],
        "unit": top["unit"],
        "estimate": float(top["estimate"]),
        "low": float(top["ci_low"]),
        "high": float(top["ci_high"]),
        "required": float(allocation["required"].sum()),
        "planned": planned,
        "split": split.to_dict(),
        "share": agree,
        "even": planned / len(order),
        "replicates": len(wide),
    }


def split_text(split: dict, labels: figures.Labels) -> str:
    """ "长者 4、残疾人 2、…" / "elderly 4, disability 2, …" in team order."""
    sep = "、" if labels.lang == "zh" else ", "
    return sep.join(f"{labels.team(t)} {n}" for t, n in split.items())


def assumption_items(sensitivity: pd.DataFrame, labels: figures.Labels, top: int = 4) -> list[str]:
    """The assumptions that move required staff most, with their value and the range tried."""
    figures.require_columns(sensitivity, "sensitivity")
    rows = sensitivity.assign(swing=(sensitivity["required_high"] - sensitivity["required_low"]).abs())
    rows = rows.sort_values(["swing", "assumption"], ascending=[False, True]).head(top)
    return [
        labels("brief.assumption_row", name=figures.assumption_label(a, labels), base=b, low=lo, high=hi)
        for a, b, lo, hi in zip(rows["assumption"], rows["base"], rows["low"], rows["high"])
    ]


def figure_uri(fig) -> str:
    """A figure as a base64 PNG data URI (fixed metadata, so the same figure gives the same bytes)."""
    buffer = io.BytesIO()
    with figures.house_style():
        fig.savefig(buffer, format="png", dpi=BRIEF_DPI, metadata=figures.PNG_METADATA)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def font_face(text: str) -> str:
    """A CSS @font-face embedding the Noto Sans CJK SC glyphs of ``text`` (subset, base64 OpenType).

    Returns "" when the font package is absent (the page then falls back to installed CJK fonts). Subsetting
    the 20 MB collection is most of the brief's time, so the result is kept in the user's cache folder
    (``$XDG_CACHE_HOME/leliu/fonts``), named by the sha256 of the text, the font file and the fontTools
    version; a cached file holds exactly the bytes a new subset would.
    """
    try:
        import fontTools
        import noto_cjk_sans_otc
    except ImportError:
        return ""
    font = Path(noto_cjk_sans_otc.FONT_PATH)
    key = hashlib.sha256(
        "\0".join(
            [text, str(font), str(font.stat().st_size), str(font.stat().st_mtime_ns), fontTools.version]
        ).encode()
    ).hexdigest()
    cached = (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "leliu" / "fonts" / f"{key}.css"
    )
    if cached.is_file():
        return cached.read_text(encoding="ascii")
    face = _subset_face(text, font)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        draft = cached.with_suffix(f".{os.getpid()}.tmp")
        draft.write_text(face, encoding="ascii")
        draft.replace(cached)
    except OSError:  # a read-only home: no cache, same page
        pass
    return face


def _subset_face(text: str, font: Path) -> str:
    """The @font-face CSS of a new subset of the collection ``font`` to the glyphs of ``text``."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    collection = TTFont(str(font), fontNumber=_sc_face_index(font), lazy=True, recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = ["*"]
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(collection)
    buffer = io.BytesIO()
    collection.save(buffer)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'@font-face {{ font-family: "{FONT_FAMILY}"; font-weight: 100 900; '
        f'src: url(data:font/otf;base64,{data}) format("opentype"); }}'
    )


def _sc_face_index(path) -> int:
    """Index of the "Noto Sans CJK SC" face in the collection (its default face is Japanese)."""
    from fontTools.ttLib import TTCollection

    names = [face["name"].getDebugName(1) for face in TTCollection(str(path), lazy=True).fonts]
    return names.index(figures.CJK_FAMILY)


def render_brief(
    outputs: dict, form, note: figures.Note, threshold: int = 10, needs: dict | None = None
) -> str:
    """The brief as one self-contained HTML string (Chinese first, English alongside), from the template
    with every value escaped by jinja2. Team names and colours come from ``needs`` (default needs.yaml)."""
    needs = config.load_needs() if needs is None else needs
    zh, en = figures.load_labels("zh", form, needs=needs), figures.load_labels("en", form, needs=needs)
    numbers = key_numbers(outputs["results"], outputs["allocation"], outputs["replicate_allocations"])
    results, size = outputs["results"], BRIEF_INCHES
    made = {
        "demand_by_team": figures.demand_by_team(results, zh, note, threshold=threshold, size=size),
        "top_services": figures.top_services(results, zh, note, k=6, threshold=threshold, size=size),
        "unmet_need": figures.unmet_need(results, zh, note, threshold=threshold, size=size),
        "staffing_vs_even": figures.staffing_vs_even(
            outputs["allocation"],
            outputs["replicate_allocations"],
            zh,
            note,
            categories=("social_workers",),
            size=size,
        ),
    }
    values = {
        labels.lang: {
            "team": labels.team(numbers["team"]),
            "unit": labels(f"units.{numbers['unit']}"),
            "estimate": numbers["estimate"],
            "low": numbers["low"],
            "high": numbers["high"],
            "required": numbers["required"],
            "planned": numbers["planned"],
            "share": numbers["share"],
        }
        for labels in (zh, en)
    }
    cards = [
        {
            "value": value,
            "colour": colour,
            **{labels.lang: labels(key, **values[labels.lang]) for labels in (zh, en)},
        }
        for value, key, colour in (
            (f"{numbers['estimate']:,.0f}", "brief.largest_need", numbers["team"]),
            (f"{numbers['required']:.1f}", "brief.required", "grey"),
            (f"{numbers['share']:.0%}", "brief.stability", "grey"),
        )
    ]
    fields = {
        "title": {labels.lang: labels("brief.title") for labels in (zh, en)},
        "headings": {
            part: {labels.lang: labels(f"brief.{part}") for labels in (zh, en)}
            for part in ("numbers", "figures", "assumptions")
        },
        "simulated": zh("mark.simulated") if note.simulated else None,
        "teams": [{"name": team, "colour": spec["colour"]} for team, spec in needs["teams"].items()],
        "font_family": FONT_FAMILY,
        "cards": cards,
        "sentence": {
            labels.lang: labels(
                "brief.sentence",
                planned=numbers["planned"],
                split=split_text(numbers["split"], labels),
                share=numbers["share"],
                even=numbers["even"],
            )
            for labels in (zh, en)
        },
        "figures": [{"name": name, "uri": figure_uri(fig)} for name, fig in made.items()],
        "assumptions": {
            labels.lang: assumption_items(outputs["sensitivity"], labels)
            + [
                labels("brief.weighting", weighted_to=labels("footnote.default_weighted_to")),
                labels("brief.disclosure", threshold=threshold),
            ]
            + ([labels("brief.simulated")] if note.simulated else [])
            for labels in (zh, en)
        },
        "footer": {
            labels.lang: figures.footnote_text(note, labels).replace(
                "\n", "；" if labels.lang == "zh" else "; "
            )
            for labels in (zh, en)
        },
    }
    template = TEMPLATES.get_template("template.html")
    without_font = template.render(**fields, font_face="")
    return template.render(**fields, font_face=Markup(font_face(visible_text(without_font))))


def visible_text(page: str) -> str:
    """The characters a reader sees on the page (tags, styles and data URIs removed, entities decoded)."""
    body = re.sub(r"<style.*?</style>|<[^>]+>", " ", page, flags=re.DOTALL)
    return html.unescape(body)


def write_brief(page: str, brief_dir: str | Path) -> Path:
    """Write ``brief.html`` into ``brief_dir`` and return its path."""
    brief_dir = Path(brief_dir)
    brief_dir.mkdir(parents=True, exist_ok=True)
    path = brief_dir / "brief.html"
    path.write_text(page, encoding="utf-8")
    return path


def build(outputs: dict, form, brief_dir: str | Path, threshold: int = 10, needs: dict | None = None) -> dict:
    """Write ``brief.html`` (and ``brief.pdf`` when Chromium is installed) into ``brief_dir``."""
    note = figures.data_note(outputs["households"], outputs["persons"], outputs["provenance"])
    path = write_brief(render_brief(outputs, form, note, threshold=threshold, needs=needs), brief_dir)
    return {"html": path, "pdf": print_pdf(path)}
