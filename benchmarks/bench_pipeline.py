"""Benchmark of the pipeline stages on simulated surveys of growing size, and of the whole report.

    python benchmarks/bench_pipeline.py [--sizes 1500 15000 150000] [--cache DIR] [--out FILE.json]

Surveys: ``analysis.simulate`` with seed 2012 and about ``n`` responding households (the population is
scaled up so that 150,000 households can be sampled), generated once, untimed, into a cache folder
outside git (default ``$XDG_CACHE_HOME/leliu-bench`` or ``~/.cache/leliu-bench``), keyed by size,
scale and a hash of the generator and instrument. Only the Kobo CSV export is written
(``write_survey(formats=("kobo_csv",))``): openpyxl needs several minutes per 15,000 households for the
.xlsx copy, which would not fit the 15-minute budget of ``make bench``.

Stages, each in a fresh process running the stage function of ``analysis.pipeline`` (as notebooks 01–04
and ``run --no-notebooks`` do, figures left out), which reads what the stage before it wrote
(docs/contracts.md) and writes its own outputs:
``clean`` (ingest the Kobo CSV export + checks + clean tables), ``weights`` (design weights,
nonresponse, raking, 200 bootstrap replicates with raking redone), ``demand`` (``run_demand``) and
``sizing`` (the staffing chain at the point estimate and over the 200 replicate drivers, tornado,
break-evens, tables). Each stage reports its work time (inside the process, after imports), the
process wall time (start-up, imports, reading and writing included) and peak RSS (``ru_maxrss`` of
the process from ``wait4``). The scaling exponent k is the least-squares slope of log(work time) on
log(responding households).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FORM = ROOT / "survey" / "instrument" / "leliu_needs_survey.xlsx"
SIZES = (1_500, 15_000, 150_000)
STAGES = ("clean", "weights", "demand", "sizing")
SEED = 2012
REPLICATES = 200
REPLICATE_SEED = 20120411  # as analysis.pipeline.REPLICATE_SEED
BREAK_EVEN_KEYS = 12  # as analysis.pipeline.BREAK_EVEN_KEYS
POPULATION_HOUSEHOLDS = 92_496  # households at scale 1 (survey/raw/PROVENANCE.json)


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "leliu-bench"


def scale_for(n: int) -> float:
    """Population scale so that ~n respondents (issued n / 0.6) are at most ~30% of all households."""
    return float(max(1, int(np.ceil(n / 0.6 / 0.3 / POPULATION_HOUSEHOLDS))))


def generator_hash() -> str:
    """Hash of everything the simulated survey depends on: a change regenerates the cached surveys."""
    digest = hashlib.sha256()
    files = [
        *sorted((ROOT / "analysis" / "simulate").glob("*.py")),
        ROOT / "analysis" / "simulation.yaml",
        *sorted((ROOT / "survey" / "instrument").glob("*.csv")),
    ]
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def write_csv_survey(n: int, scale: float, out_dir: Path) -> dict:
    """``simulate.write_survey`` with the Kobo CSV export only (no .xlsx or 问卷星 copies), the frame,
    truth and fault files; returns its PROVENANCE.json."""
    from analysis import simulate

    paths = simulate.write_survey(SEED, out_dir, n_households=n, scale=scale, formats=("kobo_csv",))
    return json.loads(paths["provenance"].read_text(encoding="utf-8"))


def survey_dir(n: int, cache: Path) -> tuple[Path, float | None]:
    """The cached survey of about n households, generated (untimed) when absent; (folder, seconds spent
    generating it in this call or None when it was cached)."""
    scale = scale_for(n)
    folder = cache / f"survey_n{n}_scale{scale:g}_seed{SEED}_{generator_hash()}"
    seconds = None
    if not (folder / "raw" / "PROVENANCE.json").exists():
        started = time.perf_counter()
        print(
            f"  generating the {n:,}-household survey (scale {scale:g}) into {folder} ...",
            end=" ",
            flush=True,
        )
        tmp = folder.with_name(folder.name + ".partial")
        code = subprocess.call([sys.executable, __file__, "--generate", str(n), str(scale), str(tmp)])
        if code != 0:
            raise RuntimeError(f"survey generation for n={n} failed (exit {code})")
        tmp.rename(folder)
        for stale in cache.glob(f"survey_n{n}_scale{scale:g}_seed{SEED}_*"):  # older generator versions
            if stale != folder:
                shutil.rmtree(stale)
        seconds = time.perf_counter() - started
        print(f"{seconds:.0f} s", flush=True)
    return folder, seconds


# -- one stage, run in a child process ---------------------------------------------------------------


def stage_clean(survey: Path, work: Path) -> dict:
    from analysis import pipeline

    done = pipeline.clean(
        work, pipeline.Inputs(data=survey / "raw" / "kobo" / "leliu_needs.csv", form=FORM), fig_dir=None
    )
    return {"counts": {k: int(v) for k, v in done.result.counts.items()}}


def stage_weights(survey: Path, work: Path) -> dict:
    from analysis import pipeline

    done = pipeline.weights(
        work,
        pipeline.Inputs(frame=survey / "frame"),
        fig_dir=None,
        replicates=REPLICATES,
        seed=REPLICATE_SEED,
    )
    return {
        "counts": {
            "persons": len(done.built.persons),
            "replicates": done.built.person_replicates.shape[1] - 1,
        }
    }


def stage_demand(survey: Path, work: Path) -> dict:
    from analysis import pipeline

    done = pipeline.demand(work, FORM, fig_dir=None)
    return {"counts": {"estimates": len(done.run.results)}}


def stage_sizing(survey: Path, work: Path) -> dict:
    from analysis import pipeline

    done = pipeline.staffing(work, fig_dir=None, break_even_keys=BREAK_EVEN_KEYS)
    return {"counts": {"replicates": int(done.summary["replicates"])}}


STAGE_FUNCTIONS = {
    "clean": stage_clean,
    "weights": stage_weights,
    "demand": stage_demand,
    "sizing": stage_sizing,
}
STAGE_MODULES = {
    "clean": ["analysis.clean", "analysis.pipeline"],
    "weights": ["analysis.weights", "analysis.pipeline"],
    "demand": ["analysis.demand", "analysis.indicators", "analysis.pipeline"],
    "sizing": ["analysis.staffing", "analysis.pipeline"],
}


def run_stage(stage: str, survey: Path, work: Path) -> dict:
    """Import the stage's modules, then time the stage (reading its inputs and writing its outputs
    included)."""
    import importlib

    for module in ["pandas", "pyarrow", *STAGE_MODULES[stage]]:
        importlib.import_module(module)
    wall, cpu = time.perf_counter(), time.process_time()
    result = STAGE_FUNCTIONS[stage](survey, work)
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu, **result}


# -- the parent side ------------------------------------------------------------------------------


def run_child(cmd: list[str], timeout: float) -> tuple[int, float, int, float]:
    """Run ``cmd``; return (exit code, wall seconds, peak RSS in bytes of the largest process among it and
    its waited-for children, CPU seconds user + system)."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=ROOT)
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            return -9, time.perf_counter() - started, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    return (
        process.returncode,
        time.perf_counter() - started,
        usage.ru_maxrss * 1024,
        usage.ru_utime + usage.ru_stime,
    )


def fit_exponent(n: list[float], seconds: list[float]) -> float | None:
    """Least-squares slope of log(seconds) on log(n): time ∝ n^k."""
    if len(n) < 2:
        return None
    return float(np.polyfit(np.log(n), np.log(seconds), 1)[0])


def fit_scaling(runs: list[dict]) -> dict:
    """Per stage: k and k_cpu over every size that finished, the slope between each pair of consecutive
    sizes (``k_steps``), and ``k_at_least`` when the largest size was stopped (its lower-bound time)."""
    scaling = {}
    for stage in STAGES:
        done = [r for r in runs if r["stage"] == stage and "seconds" in r]
        bound = [r for r in runs if r["stage"] == stage and r.get("timed_out")]
        n = [r["households"] for r in done]
        scaling[stage] = {
            "k": fit_exponent(n, [r["seconds"] for r in done]),
            "k_cpu": fit_exponent(n, [r["cpu_seconds"] for r in done]),
            "sizes": [r["size"] for r in done],
            "k_steps": [
                fit_exponent([a["households"], b["households"]], [a["seconds"], b["seconds"]])
                for a, b in pairwise(done)
            ],
        }
        if bound and done:  # a timed-out size: its lower-bound time gives a lower bound on k
            scaling[stage]["k_at_least"] = fit_exponent(
                n + [r["households"] for r in bound],
                [r["seconds"] for r in done] + [r["seconds_at_least"] for r in bound],
            )
    return scaling


def run_pipeline(
    sizes: list[int], cache: Path, work_root: Path, timeout: float = 900.0, deadline: float | None = None
) -> dict:
    """Every stage at every size; a failing stage is recorded and the later stages of that size skipped.

    A stage gets at most ``timeout`` seconds and never runs past ``deadline`` (a ``time.perf_counter``
    value). A stage stopped there is recorded as timed out, with its work time as a lower bound.
    """
    runs = []
    for n in sizes:
        survey, generated = survey_dir(n, cache)
        provenance = json.loads((survey / "raw" / "PROVENANCE.json").read_text(encoding="utf-8"))
        work = work_root / f"n{n}"
        work.mkdir(parents=True, exist_ok=True)
        for stage in STAGES:
            entry = {
                "size": n,
                "stage": stage,
                "scale": provenance["scale"],
                "households": provenance["households_responding"],
                "submissions": provenance["submissions"],
                "generated_seconds": generated,
            }
            runs.append(entry)
            limit = timeout if deadline is None else min(timeout, deadline - time.perf_counter())
            if limit < 5:
                entry["error"] = "not run: the time budget of the run was used up"
                print(f"  n={n:,} {stage}: {entry['error']}", flush=True)
                break
            result_file = work / f"{stage}.json"
            result_file.unlink(missing_ok=True)
            print(f"  n={n:,} {stage} ...", end=" ", flush=True)
            code, wall, rss, cpu = run_child(
                [sys.executable, __file__, "--child", stage, str(survey), str(work), str(result_file)], limit
            )
            entry.update(exit_code=code, process_seconds=wall, process_cpu_seconds=cpu, peak_rss_bytes=rss)
            if code == 0 and result_file.exists():
                entry.update(json.loads(result_file.read_text()))
                print(
                    f"{entry['seconds']:.1f} s work ({entry['cpu_seconds']:.1f} s CPU), "
                    f"{wall:.1f} s process, "
                    f"{rss / 1e9:.2f} GB",
                    flush=True,
                )
                continue
            if code == -9:
                startup = max(
                    (
                        r["process_seconds"] - r["seconds"]
                        for r in runs
                        if r["stage"] == stage and "seconds" in r
                    ),
                    default=0.0,
                )
                entry.update(
                    error=f"stopped after {wall:.0f} s",
                    timed_out=True,
                    seconds_at_least=max(wall - startup, 0.0),
                )
            else:
                entry["error"] = f"exit code {code}"
            print(entry["error"], flush=True)
            break
    scaling = fit_scaling(runs)
    return {"runs": runs, "scaling": scaling, "replicates": REPLICATES, "cache": str(cache)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--cache", type=Path, default=default_cache())
    ap.add_argument(
        "--work", type=Path, default=None, help="folder for stage outputs (default: a temp folder)"
    )
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--child", nargs=4, metavar=("STAGE", "SURVEY", "WORK", "RESULT"), help=argparse.SUPPRESS)
    ap.add_argument("--generate", nargs=3, metavar=("N", "SCALE", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.generate:
        n, scale, folder = args.generate
        write_csv_survey(int(n), float(scale), Path(folder))
        return 0
    if args.child:
        stage, survey, work, result = args.child
        Path(result).write_text(json.dumps(run_stage(stage, Path(survey), Path(work))))
        return 0
    import tempfile

    with tempfile.TemporaryDirectory(prefix="leliu-bench-") as tmp:
        results = run_pipeline(args.sizes, args.cache, args.work or Path(tmp))
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
