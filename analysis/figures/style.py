"""House style of every figure: the CJK font, sizes and colours, the labels object (labels.yaml + needs.yaml
+ the instrument's choices), the footnote and simulated-data mark, and deterministic PNG/SVG files (PNG
without the Software chunk, SVG with a fixed hash salt and no date, so two runs give the same bytes)."""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from analysis import config
from analysis.errors import ConfigError

LABELS_PATH = config.LABELS_PATH
NEUTRAL = "#595959"
LIGHT = "#BFBFBF"
SUPPRESSED = "#E0E0E0"
SIMULATED_RED = "#C00000"
CJK_FAMILY = "Noto Sans CJK SC"
SYSTEM_CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
)
SLIDE_INCHES = (13.33, 7.5)  # 16:9 slide
DPI = 300
# Fixed metadata: no software version or creation date in the files, so reruns give identical bytes.
PNG_METADATA = {"Software": None}
SVG_METADATA = {"Date": None, "Creator": None}
FORMATS = ("png", "svg")


def register_cjk_font() -> str:
    """Make a Simplified Chinese font available to matplotlib and return its family name.

    Uses the Noto Sans CJK collection shipped by the PyPI package ``noto-cjk-sans-otc`` (a dependency, so a
    fresh machine without system fonts still renders Chinese); the collection's default face is Japanese,
    so the "Noto Sans CJK SC" face is named explicitly. Falls back to a system CJK font when the package
    is missing.
    """
    try:
        import noto_cjk_sans_otc
    except ImportError:
        noto_cjk_sans_otc = None
    if noto_cjk_sans_otc is not None:
        path = str(noto_cjk_sans_otc.FONT_PATH)
        if not any(entry.fname == path for entry in font_manager.fontManager.ttflist):
            font_manager.fontManager.addfont(path)
        return CJK_FAMILY
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    for family in SYSTEM_CJK_FAMILIES:
        if family in installed:
            return family
    raise ConfigError(
        "no Chinese (CJK) font found for figures",
        hint="pip install noto-cjk-sans-otc (a project dependency) or install fonts-noto-cjk",
    )


def style_rc(family: str) -> dict:
    """The house style as matplotlib rcParams: large type for slides, no chart junk, fixed SVG salt."""
    return {
        "font.family": [family, "DejaVu Sans"],
        "font.size": 18,
        "axes.titlesize": 22,
        "axes.labelsize": 18,
        "xtick.labelsize": 16,
        "ytick.labelsize": 18,
        "legend.fontsize": 16,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.spines.left": False,
        "axes.edgecolor": NEUTRAL,
        "axes.labelcolor": "#262626",
        "xtick.color": "#262626",
        "ytick.color": "#262626",
        "ytick.left": False,
        "axes.grid": False,
        "axes.unicode_minus": False,
        "legend.frameon": False,
        "figure.facecolor": "white",
        "savefig.facecolor": "white",
        "svg.fonttype": "path",
        "svg.hashsalt": "leliu-needs",
        "path.simplify": False,
    }


@contextlib.contextmanager
def house_style():
    """Context in which figures are drawn and saved with the house style and the CJK font."""
    with matplotlib.rc_context(style_rc(register_cjk_font())):
        yield


def styled(make):
    """Run a figure-making function inside :func:`house_style` (text takes its font when created)."""

    @functools.wraps(make)
    def wrapper(*args, **kwargs):
        with house_style():
            return make(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Labels:
    """Display labels in one language: the labels file, the teams of needs.yaml (names and colours, in
    their order) and the instrument's choice labels."""

    lang: str
    text: dict
    choices: dict = field(default_factory=dict)
    team_styles: dict = field(default_factory=dict)  # team -> {"label": {zh, en}, "colour": "#rrggbb"}

    def __call__(self, key: str, **values) -> str:
        """The label at dotted ``key`` (e.g. "figures.top_services.title"), formatted with ``values``."""
        node = self.text
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"no label '{key}'", file=str(LABELS_PATH), hint="add it in both zh and en")
            node = node[part]
        if not isinstance(node, dict) or self.lang not in node:
            raise ConfigError(f"label '{key}' has no '{self.lang}' text", file=str(LABELS_PATH))
        return node[self.lang].format(**values)

    def get(self, key: str, default: str) -> str:
        """The label at ``key`` or ``default`` when the labels file has none (e.g. an unknown reason)."""
        try:
            return self(key)
        except ConfigError:
            return default

    @property
    def teams(self) -> list[str]:
        """The teams in needs.yaml's order (the order of every figure)."""
        return list(self.team_styles)

    def _style(self, team: str) -> dict:
        if team not in self.team_styles:
            raise ConfigError(
                f"team '{team}' is in the results but not in needs.yaml",
                file=str(config.NEEDS_PATH),
                column="teams",
                hint="rerun the demand stage after changing needs.yaml",
            )
        return self.team_styles[team]

    def team(self, team: str) -> str:
        """The team's name (needs.yaml ``label``)."""
        return self._style(team)["label"][self.lang]

    def colour(self, team: str) -> str:
        """The team's colour (needs.yaml ``colour``), the same in every figure and in the brief."""
        return self._style(team)["colour"]

    def choice(self, list_name: str, name: str) -> str:
        """The instrument's label of choice ``name`` in list ``list_name``; the code itself if absent."""
        return self.choices.get((list_name, name), name)

    def service(self, team: str, service: str) -> str:
        return self.choice(f"{team}_services", service)

    def cunju(self, code: str) -> str:
        return self.choice("cunju", code)


def load_labels(
    lang: str = "zh", form=None, path: str | Path = LABELS_PATH, needs: dict | None = None
) -> Labels:
    """Labels in ``lang`` ("zh" or "en") from the labels file, the teams of ``needs`` (default
    analysis/needs.yaml) and, when given, an instrument ``Form``.

    ``form`` is an ``analysis.instrument.Form`` (or anything with a ``choices`` DataFrame holding
    ``list_name, name, label_zh, label_en``); without it choice labels fall back to their codes.
    """
    if lang not in ("zh", "en"):
        raise ConfigError(f"unknown label language '{lang}'", hint="use zh or en")
    text = config.load_label_texts(path)
    needs = config.load_needs() if needs is None else needs
    styles = {
        team: {"label": spec["label"], "colour": spec["colour"]} for team, spec in needs["teams"].items()
    }
    choices = {}
    if form is not None:
        table = form.choices
        labels = table[f"label_{lang}"].where(table[f"label_{lang}"].astype(str).str.len() > 0, table["name"])
        choices = dict(zip(zip(table["list_name"], table["name"]), labels))
    return Labels(lang=lang, text=text, choices=choices, team_styles=styles)


@dataclass(frozen=True)
class Note:
    """What every figure's footnote says, computed from the clean data and its provenance."""

    households: int
    persons: int
    date: str
    simulated: bool
    source: str | None = None
    weighted_to: str | None = None


def data_note(households: pd.DataFrame, persons: pd.DataFrame, provenance: dict) -> Note:
    """The footnote facts: unweighted N and fieldwork dates from the clean tables, simulation flag.

    Dates are the first and last interview dates (``today``, else ``start``) in the clean households,
    so the footnote is reproducible and does not depend on when the figures are drawn.
    """
    dates = pd.Series(dtype="datetime64[ns]")
    for column in ("today", "start"):
        if column in households:
            dates = pd.to_datetime(households[column], errors="coerce", utc=True).dropna()
            if len(dates):
                break
    if len(dates):
        first, last = dates.min().strftime("%Y-%m-%d"), dates.max().strftime("%Y-%m-%d")
        date = first if first == last else f"{first} – {last}"
    else:
        date = str(provenance.get("fieldwork", provenance.get("date", "?")))
    return Note(
        households=len(households),
        persons=len(persons),
        date=date,
        simulated=bool(provenance.get("simulated", False)),
    )


def footnote_text(note: Note, labels: Labels, extra: str | None = None) -> str:
    """The footnote line(s) for a figure."""
    sep = "；" if labels.lang == "zh" else "; "
    lines = [
        [
            labels("footnote.source", source=note.source or labels("footnote.default_source")),
            labels("footnote.n", households=note.households, persons=note.persons),
        ],
        [
            labels(
                "footnote.weighted", weighted_to=note.weighted_to or labels("footnote.default_weighted_to")
            ),
            labels("footnote.date", date=note.date),
        ],
        [p for p in (extra, labels("footnote.simulated") if note.simulated else None) if p],
    ]
    return "\n".join(sep.join(line) for line in lines if line)


def new_figure(
    title: str,
    note: Note,
    labels: Labels,
    extra_note: str | None = None,
    size: tuple[float, float] = SLIDE_INCHES,
) -> Figure:
    """A figure with its title, footnote and (for simulated data) the simulated mark.

    Slide size by default; smaller sizes (the brief's) get smaller title, mark and footnote. The axes
    area is left to constrained layout inside a band between the title and the footnote.
    """
    slide = size[0] >= SLIDE_INCHES[0]
    bottom = 0.13 if slide else 0.16
    fig = Figure(
        figsize=size, dpi=DPI, layout=ConstrainedLayoutEngine(rect=(0.01, bottom, 0.98, 0.9 - bottom))
    )
    fig.text(0.015, 0.965, title, ha="left", va="top", fontsize=28 if slide else 22, color="#1a1a1a")
    fig.text(
        0.015,
        0.02,
        footnote_text(note, labels, extra_note),
        ha="left",
        va="bottom",
        fontsize=11.5 if slide else 9,
        color=NEUTRAL,
        linespacing=1.4,
    )
    if note.simulated:
        fig.text(
            0.985,
            0.965,
            labels("mark.simulated"),
            ha="right",
            va="top",
            fontsize=20 if slide else 15,
            color=SIMULATED_RED,
            bbox={
                "boxstyle": "round,pad=0.35",
                "facecolor": "white",
                "edgecolor": SIMULATED_RED,
                "linewidth": 2.5,
            },
        )
    return fig


def pin_layout(fig: Figure, digits: int = 9) -> None:
    """Lay ``fig`` out once and pin every axes where the layout put it, rounded to ``digits`` decimals of the
    figure's size, with the layout engine then switched off.

    The constrained-layout solver's last bits depend on the order of Python's string hashes, which
    changes from process to process (PYTHONHASHSEED); the axes then move by ~1e-13 of the figure, no pixel
    changes, but the SVG's clip-path ids (hashes of the clip boxes) do. Pinned positions give the same
    bytes whatever the hash seed.
    """
    engine = fig.get_layout_engine()
    if engine is None:
        return
    engine.execute(fig)  # the layout step of a draw, without drawing every artist
    boxes = [(ax, ax.get_position(original=False).bounds) for ax in fig.axes]
    fig.set_layout_engine("none")
    for ax, bounds in boxes:
        ax.set_position([round(v, digits) for v in bounds], which="both")


def save_figure(fig: Figure, fig_dir: str | Path, name: str, formats: tuple = FORMATS) -> list[Path]:
    """Write ``fig`` as ``<name>.png`` (300 dpi) and ``<name>.svg``, with fixed metadata.

    Same bytes on rerun.
    """
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    metadata = {
        "png": PNG_METADATA,
        "svg": SVG_METADATA,
        "pdf": {"CreationDate": None, "Producer": None, "Creator": None},
    }
    paths = []
    with house_style():
        pin_layout(fig)
        for fmt in formats:
            path = fig_dir / f"{name}.{fmt}"
            fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata[fmt])
            paths.append(path)
    return paths


def preview(paths: Path | list[Path], width: int = 1200):
    """A saved figure, scaled to ``width`` pixels, as an image a notebook shows (keeps notebooks small;
    the full-size files are in ``figures/``). ``paths`` may be the list :func:`save_figure` returns."""
    from IPython.display import Image as Shown
    from PIL import Image

    path = next(p for p in ([paths] if isinstance(paths, str | Path) else paths) if Path(p).suffix == ".png")
    with Image.open(path) as image:
        small = image.convert("RGB").resize(
            (width, round(image.height * width / image.width)), Image.Resampling.LANCZOS
        )
    small = small.quantize(
        128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )  # a quarter the bytes
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    return Shown(data=buffer.getvalue(), format="png")


def save_figures(figures: dict[str, Figure], fig_dir: str | Path, formats: tuple = FORMATS) -> dict:
    """Save every figure with :func:`save_figure`; returns the written paths by figure name."""
    return {name: save_figure(fig, fig_dir, name, formats) for name, fig in figures.items()}
