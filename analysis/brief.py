"""The one-page leadership brief: three numbers, one staffing sentence, four figures, the assumptions.

Built from the stage outputs only (demand results, staffing tables, clean data): every number on the
page is computed here from those tables, none is typed in. Chinese first, English alongside. The HTML is
self-contained so a planner can email it: figures are embedded PNGs and the Chinese font is embedded as
a subset of Noto Sans CJK SC holding exactly the characters the page uses, so it renders on a machine
without Chinese fonts. A PDF is printed with headless Chromium when it is installed.
"""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from string import Template

import pandas as pd

from analysis import figures
from analysis.errors import AnalysisError

TEMPLATE_PATH = Path(__file__).with_name("brief_template.html")
BRIEF_INCHES = (9.0, 5.0625)  # 16:9, two per row on A4
BRIEF_DPI = 200
FONT_FAMILY = "Leliu Noto Sans SC"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--mute-audio")
FIXED_PDF_DATE = b"D:20120411000000+00'00'"  # the centre's opening day (docs/sources.md §1.1)


def key_numbers(results: pd.DataFrame, allocation: pd.DataFrame, replicates: pd.DataFrame) -> dict:
    """The three numbers that matter and the recommendation, computed from the stage outputs.

    - the team with the most residents in need: ``in_need_<team>`` total with its 95% CI, among the teams
      counted in persons (family need is counted in households, which are not comparable with persons);
    - WISN required social workers (sum over teams) against the plan (sum of the allocation);
    - the share of bootstrap replicates whose social-worker split equals the recommended one.
    """
    rows = results[(results["analysis_type"] == "total") & (results["group"] == "all")
                   & (results["variable"] == "in_need_" + results["team"].astype(str))]
    if rows.empty:
        raise AnalysisError("no in_need_<team> totals in the results", file="demand/results.csv",
                            column="variable", hint="rerun notebook 03_demand")
    persons = rows[rows["unit"] == "persons"]
    top = (persons if persons["estimate"].notna().any() else rows).pipe(lambda r: r.loc[r["estimate"].idxmax()])
    figures.require_columns(allocation, "allocation")
    figures.require_columns(replicates, "replicate_allocations")
    order = list(allocation["team"])
    split = allocation.set_index("team").loc[order, "social_workers"].astype(int)
    wide = replicates.pivot(index="replicate", columns="team", values="social_workers")[order]
    agree = float((wide.to_numpy() == split.to_numpy()).all(axis=1).mean())
    planned = int(split.sum())
    return {"team": top["team"], "unit": top["unit"], "estimate": float(top["estimate"]),
            "low": float(top["ci_low"]), "high": float(top["ci_high"]),
            "required": float(allocation["required"].sum()), "planned": planned,
            "split": split.to_dict(), "share": agree, "even": planned / len(order),
            "replicates": len(wide)}


def split_text(split: dict, labels: figures.Labels) -> str:
    """"长者 4、残疾人 2、…" / "elderly 4, disability 2, …" in team order."""
    sep = "、" if labels.lang == "zh" else ", "
    return sep.join(f"{labels.team(t)} {n}" for t, n in split.items())


def assumption_items(sensitivity: pd.DataFrame, labels: figures.Labels, top: int = 4) -> list[str]:
    """The assumptions that move required staff most, with their value and the range tried."""
    figures.require_columns(sensitivity, "sensitivity")
    rows = sensitivity.assign(swing=(sensitivity["required_high"] - sensitivity["required_low"]).abs())
    rows = rows.sort_values(["swing", "assumption"], ascending=[False, True]).head(top)
    return [labels("brief.assumption_row", name=figures.assumption_label(a, labels), base=b, low=lo, high=hi)
            for a, b, lo, hi in zip(rows["assumption"], rows["base"], rows["low"], rows["high"])]


def figure_uri(fig) -> str:
    """A figure as a base64 PNG data URI (fixed metadata, so the same figure gives the same bytes)."""
    buffer = io.BytesIO()
    with figures.house_style():
        fig.savefig(buffer, format="png", dpi=BRIEF_DPI, metadata=figures.PNG_METADATA)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def font_face(text: str) -> str:
    """A CSS @font-face embedding the Noto Sans CJK SC glyphs of ``text`` (subset, base64 OpenType).

    Returns "" when the font package is absent (the page then falls back to installed CJK fonts).
    """
    try:
        import noto_cjk_sans_otc
        from fontTools import subset
        from fontTools.ttLib import TTFont
    except ImportError:
        return ""
    collection = TTFont(str(noto_cjk_sans_otc.FONT_PATH), fontNumber=_sc_face_index(noto_cjk_sans_otc.FONT_PATH),
                        lazy=True, recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = ["*"]
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(collection)
    buffer = io.BytesIO()
    collection.save(buffer)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'@font-face {{ font-family: "{FONT_FAMILY}"; font-weight: 100 900; '
            f'src: url(data:font/otf;base64,{data}) format("opentype"); }}')


def _sc_face_index(path) -> int:
    """Index of the "Noto Sans CJK SC" face in the collection (its default face is Japanese)."""
    from fontTools.ttLib import TTCollection
    names = [face["name"].getDebugName(1) for face in TTCollection(str(path), lazy=True).fonts]
    return names.index(figures.CJK_FAMILY)


def render_brief(outputs: dict, form, note: figures.Note, threshold: int = 10) -> str:
    """The brief as one self-contained HTML string (Chinese first, English alongside)."""
    zh, en = figures.load_labels("zh", form), figures.load_labels("en", form)
    numbers = key_numbers(outputs["results"], outputs["allocation"], outputs["replicate_allocations"])
    results, size = outputs["results"], BRIEF_INCHES
    made = {
        "demand_by_team": figures.demand_by_team(results, zh, note, threshold=threshold, size=size),
        "top_services": figures.top_services(results, zh, note, k=6, threshold=threshold, size=size),
        "unmet_need": figures.unmet_need(results, zh, note, threshold=threshold, size=size),
        "staffing_vs_even": figures.staffing_vs_even(outputs["allocation"], outputs["replicate_allocations"], zh,
                                                     note, categories=("social_workers",), size=size),
    }
    cards = []
    for value, key, colour in (
        (f"{numbers['estimate']:,.0f}", "brief.largest_need", f"var(--{numbers['team']})"),
        (f"{numbers['required']:.1f}", "brief.required", "var(--grey)"),
        (f"{numbers['share']:.0%}", "brief.stability", "var(--grey)"),
    ):
        text = {}
        for labels in (zh, en):
            values = {"team": labels.team(numbers["team"]), "unit": labels(f"units.{numbers['unit']}"),
                      "estimate": numbers["estimate"], "low": numbers["low"], "high": numbers["high"],
                      "required": numbers["required"], "planned": numbers["planned"], "share": numbers["share"]}
            text[labels.lang] = labels(key, **values)
        cards.append(f'  <div class="number" style="border-top-color: {colour}">'
                     f'<div class="value">{html.escape(value)}</div>'
                     f'<p>{html.escape(text["zh"])}</p><p class="en">{html.escape(text["en"])}</p></div>')
    sentence = {labels.lang: labels("brief.sentence", planned=numbers["planned"],
                                    split=split_text(numbers["split"], labels), share=numbers["share"],
                                    even=numbers["even"]) for labels in (zh, en)}
    images = [f'  <figure style="margin:0"><img src="{figure_uri(fig)}" alt="{html.escape(name)}" '
              f'data-figure="{name}"></figure>' for name, fig in made.items()]
    items = {labels.lang: assumption_items(outputs["sensitivity"], labels) + [
        labels("brief.weighting", weighted_to=labels("footnote.default_weighted_to")),
        labels("brief.disclosure", threshold=threshold)] + ([labels("brief.simulated")] if note.simulated else [])
        for labels in (zh, en)}
    footer = {labels.lang: figures.footnote_text(note, labels).replace("\n", "；" if labels.lang == "zh" else "; ")
              for labels in (zh, en)}
    fields = {
        "title_zh": zh("brief.title"), "title_en": en("brief.title"),
        "numbers_zh": zh("brief.numbers"), "numbers_en": en("brief.numbers"),
        "figures_zh": zh("brief.figures"), "figures_en": en("brief.figures"),
        "assumptions_zh": zh("brief.assumptions"), "assumptions_en": en("brief.assumptions"),
        "sentence_zh": sentence["zh"], "sentence_en": sentence["en"],
        "footer_zh": footer["zh"], "footer_en": footer["en"],
    }
    fields = {k: html.escape(v) for k, v in fields.items()}
    fields["simulated_mark"] = (f'<div class="simulated">{html.escape(zh("mark.simulated"))}</div>'
                                if note.simulated else "")
    fields["numbers"] = "\n".join(cards)
    fields["figures"] = "\n".join(images)
    fields["assumptions_list_zh"] = "\n".join(f"    <li>{html.escape(i)}</li>" for i in items["zh"])
    fields["assumptions_list_en"] = "\n".join(f"    <li>{html.escape(i)}</li>" for i in items["en"])
    fields["font_face"] = ""
    page = Template(TEMPLATE_PATH.read_text(encoding="utf-8")).substitute(fields)
    fields["font_face"] = font_face(visible_text(page))
    return Template(TEMPLATE_PATH.read_text(encoding="utf-8")).substitute(fields)


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


def chromium() -> str | None:
    """Path of the Chromium browser (Debian package ``chromium``), or None when it is not installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def run_chromium(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium with a throw-away profile and the flags that keep it offline and quiet."""
    browser = chromium()
    if browser is None:
        raise AnalysisError("Chromium is not installed", hint="apt-get install chromium (Debian package)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, timeout=timeout, check=False)


def print_pdf(html_path: str | Path, pdf_path: str | Path | None = None) -> Path | None:
    """Print the brief to PDF with headless Chromium; None (and a message) when Chromium is absent.

    Chromium stamps the current time into the PDF; it is replaced by a fixed date of the same length
    so that the bytes do not depend on when the brief was printed.
    """
    html_path = Path(html_path).resolve()
    pdf_path = Path(pdf_path or html_path.with_suffix(".pdf")).resolve()
    if chromium() is None:
        print("Chromium not found: brief.pdf not written (apt-get install chromium to print it)")
        return None
    done = run_chromium(["--no-pdf-header-footer", f"--print-to-pdf={pdf_path}", html_path.as_uri()])
    if not pdf_path.exists():
        raise AnalysisError(f"Chromium did not write the PDF: {done.stderr.decode(errors='replace')[-300:]}",
                            file=str(html_path))
    data = re.sub(rb"D:\d{14}[+\-Z][0-9']*", lambda m: FIXED_PDF_DATE[:len(m.group())].ljust(len(m.group()), b"0"),
                  pdf_path.read_bytes())
    pdf_path.write_bytes(data)
    return pdf_path


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1240, height: int = 1754) -> Path:
    """A PNG screenshot of the page as headless Chromium renders it (A4 proportions by default)."""
    png_path = Path(png_path).resolve()
    run_chromium([f"--screenshot={png_path}", f"--window-size={width},{height}",
                  "--virtual-time-budget=5000", Path(html_path).resolve().as_uri()])
    if not png_path.exists():
        raise AnalysisError("Chromium did not write the screenshot", file=str(html_path))
    return png_path


def page_count(pdf_path: str | Path) -> int:
    """Number of pages in a PDF Chromium wrote (counts its /Type /Page objects)."""
    return len(re.findall(rb"/Type\s*/Page[^s]", Path(pdf_path).read_bytes()))


def build(outputs: dict, form, brief_dir: str | Path, threshold: int = 10) -> dict:
    """Write ``brief.html`` (and ``brief.pdf`` when Chromium is installed) into ``brief_dir``."""
    note = figures.data_note(outputs["households"], outputs["persons"], outputs["provenance"])
    path = write_brief(render_brief(outputs, form, note, threshold=threshold), brief_dir)
    return {"html": path, "pdf": print_pdf(path)}


