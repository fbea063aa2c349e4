"""The one-page leadership brief (stage 05).

Owns: the numbers on the page and how they are computed from the stage outputs, the jinja2 template
(``template.html``, autoescaped: no value reaches the page unescaped), the embedded figures and font
subset (``page.py``), and printing with headless Chromium (``chromium.py``).
"""

from analysis.brief.chromium import chromium, page_count, print_pdf, run_chromium, screenshot
from analysis.brief.page import build, key_numbers, render_brief, visible_text, write_brief

__all__ = [
    "build",
    "chromium",
    "key_numbers",
    "page_count",
    "print_pdf",
    "render_brief",
    "run_chromium",
    "screenshot",
    "visible_text",
    "write_brief",
]
