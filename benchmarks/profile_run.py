"""Where the time of a warm `python -m analysis run` goes, in CPU seconds (user + system).

The machine is shared, so wall time swings with other people's load; CPU time of this process and of
the children it waited for (Chromium, papermill kernels) does not. One process runs every stage
headless, as ``python -m analysis run --no-notebooks`` does, and splits each stage into its work,
drawing figures (``pipeline.save_figures``) and printing the PDF (``brief.print_pdf``); with
``--cprofile FILE`` it also writes a cProfile of the whole run (read it with ``python -m pstats``).

    .venv/bin/python benchmarks/profile_run.py --out /tmp/prof [--cprofile /tmp/prof.pstats]

Prints one JSON object: import CPU seconds, and per stage total / figures / pdf CPU and wall seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu() -> float:
    """CPU seconds of this process and its reaped children (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Clock:
    """Accumulates CPU and wall seconds of the calls it wraps, by name."""

    def __init__(self):
        self.seconds: dict[str, list[float]] = {}

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            c, w = cpu(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                cpu_s, wall_s = self.seconds.setdefault(name, [0.0, 0.0])
                self.seconds[name] = [cpu_s + cpu() - c, wall_s + time.perf_counter() - w]

        return timed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder (figures go to <out>/figures)")
    ap.add_argument("--cprofile", type=Path, default=None, help="write a cProfile of the stages here")
    args = ap.parse_args(argv)

    c0, w0 = cpu(), time.perf_counter()
    from analysis import brief, pipeline  # noqa: F401  (the imports a run pays once)

    report = {"imports": {"cpu": cpu() - c0, "wall": time.perf_counter() - w0}}

    clock = Clock()
    pipeline.save_figures = clock.wrap("figures", pipeline.save_figures)
    from analysis.brief import page

    page.print_pdf = clock.wrap("pdf", page.print_pdf)
    profiler = None
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    stages = {}
    for stage in pipeline.STAGES:
        clock.seconds.clear()
        c, w = cpu(), time.perf_counter()
        pipeline.run_stages(args.out, fig_dir=args.out / "figures", stages=(stage,))
        stages[stage] = {
            "cpu": cpu() - c,
            "wall": time.perf_counter() - w,
            **{f"{k}_cpu": v[0] for k, v in clock.seconds.items()},
            **{f"{k}_wall": v[1] for k, v in clock.seconds.items()},
        }
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(args.cprofile))
    report["stages"] = stages
    report["total"] = {"cpu": cpu() - c0, "wall": time.perf_counter() - w0}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
