"""A one-line progress display for a long stage, in a terminal or a notebook.

While the stage runs the line shows the seconds so far and, when the stage ran before on this output
folder, the time left (its last time, scaled by the households now against then); when it ends, its
time and households per second. Outside a terminal or notebook (a log file, CI) only the end is printed.
"""

from __future__ import annotations

import sys
import threading
import time


def interactive() -> bool:
    """Whether output goes to a terminal or a Jupyter front end, where a line can be redrawn."""
    if getattr(sys.stdout, "isatty", lambda: False)():
        return True
    return "ipykernel" in sys.modules


class StageProgress:
    """Context manager: redraw ``label`` with elapsed seconds and time left every ``every`` seconds.

    ``rows``: households the stage works on (None when not known yet); ``expected``: seconds the stage
    is expected to take (None: no estimate).
    """

    def __init__(
        self,
        label: str,
        rows: int | None = None,
        expected: float | None = None,
        every: float = 0.5,
        stream=None,
    ):
        self.label, self.rows, self.expected, self.every = label, rows, expected, every
        self.stream = stream or sys.stdout
        self.live = interactive()
        self._stop = threading.Event()
        self._thread = None
        self.started = 0.0
        self.seconds = 0.0

    def line(self, elapsed: float) -> str:
        text = f"{self.label} {elapsed:5.1f} s"
        if self.expected:
            text += f", about {max(self.expected - elapsed, 0):.0f} s left"
        return text

    def _draw(self):
        while not self._stop.wait(self.every):
            self.stream.write("\r" + self.line(time.perf_counter() - self.started) + "   ")
            self.stream.flush()

    def __enter__(self):
        self.started = time.perf_counter()
        if self.live:
            self._thread = threading.Thread(target=self._draw, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        if self._thread:
            self._stop.set()
            self._thread.join()
            self.stream.write("\r")
        return False

    def done_text(self) -> str:
        rate = f", {self.rows / self.seconds:,.0f} households/s" if self.rows and self.seconds > 0 else ""
        return f"{self.label} done in {self.seconds:.1f} s{rate}"
