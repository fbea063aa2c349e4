"""Headless Chromium for the brief: print it to PDF (with a fixed date, so the bytes do not depend on the
day it was printed), take a screenshot, count pages. Chromium is the Debian package ``chromium``; without
it the PDF is skipped with a message.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from analysis.errors import AnalysisError

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
)
FIXED_PDF_DATE = b"D:20120411000000+00'00'"  # the centre's opening day (docs/sources.md §1.1)


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
        return subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            timeout=timeout,
            check=False,
        )


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
        raise AnalysisError(
            f"Chromium did not write the PDF: {done.stderr.decode(errors='replace')[-300:]}",
            file=str(html_path),
        )
    data = re.sub(
        rb"D:\d{14}[+\-Z][0-9']*",
        lambda m: FIXED_PDF_DATE[: len(m.group())].ljust(len(m.group()), b"0"),
        pdf_path.read_bytes(),
    )
    pdf_path.write_bytes(data)
    return pdf_path


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1240, height: int = 1754) -> Path:
    """A PNG screenshot of the page as headless Chromium renders it (A4 proportions by default)."""
    png_path = Path(png_path).resolve()
    run_chromium(
        [
            f"--screenshot={png_path}",
            f"--window-size={width},{height}",
            "--virtual-time-budget=5000",
            Path(html_path).resolve().as_uri(),
        ]
    )
    if not png_path.exists():
        raise AnalysisError("Chromium did not write the screenshot", file=str(html_path))
    return png_path


def page_count(pdf_path: str | Path) -> int:
    """Number of pages in a PDF Chromium wrote (counts its /Type /Page objects)."""
    return len(re.findall(rb"/Type\s*/Page[^s]", Path(pdf_path).read_bytes()))
