"""`make bench`: the estimator-core benchmark, the whole report and the pipeline stages, in one results file.

    python benchmarks/run.py --out benchmarks [--quick] [--skip-core] [--skip-report] [--budget SECONDS]

1. Core: ``benchmarks/bench_core.py`` in a subprocess (it writes results_core.json/.md into --out), given
   at most 45% of ``--budget``; a missing, failing or stopped script is reported and the run carries on.
2. Report: ``python -m analysis run`` on the bundled data (warm: environment installed, files cached),
   into a temporary folder; kernel start-up = median papermill run of a one-cell notebook × the
   number of notebooks; work = the rest.
3. Lists of analyses: ``benchmarks/bench_analyse.py`` (a 500-row list on 10,000 households; 6,760 crossed
   groups of 50,000 rows), in this process.
4. Pipeline: ``benchmarks/bench_pipeline.py`` — clean, weights, demand and team sizing on simulated
   surveys of 1,500 / 15,000 / 150,000 households, one fresh process per stage; a stage still running
   when the budget ends is stopped and recorded as a lower bound.
Writes results.json and results.md into --out, with the machine description and each goal of
issue 9 marked met or missed (and by how much). ``--quick``: smallest sizes only (core 10,000 rows,
one repeat; pipeline 1,500 households); results then go to a temporary folder unless --out is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_analyse
import bench_pipeline

ROOT = Path(__file__).resolve().parents[1]
GB = 1e9
GOALS = {"stage_exponent": 1.1, "end_to_end_seconds": 120.0, "end_to_end_bytes": 8 * GB, "report_seconds": 60.0}
PACKAGES = ("numpy", "pandas", "scipy", "pyarrow", "openpyxl", "papermill", "nbclient", "ipykernel", "matplotlib",
            "pyyaml")


# -- machine --------------------------------------------------------------------------------------


def machine() -> dict:
    """CPU model, cores, RAM, load, Python and package versions, date and git commit."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    ram = None
    if Path("/proc/meminfo").exists():
        total = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        ram = int(total.group(1)) * 1024 if total else None
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "analysis"], check=False,
                           cwd=ROOT, capture_output=True, text=True)
    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_bytes": ram, "platform": platform.platform(), "python": platform.python_version(),
        "packages": versions, "git_commit": commit.stdout.strip() or None,
        "analysis_modified_since_commit": bool(dirty.stdout.strip()),
        "load_average_1min_at_start": os.getloadavg()[0],
    }


# -- core -----------------------------------------------------------------------------------------


def run_core(out: Path, quick: bool, timeout: float) -> dict:
    """Run bench_core.py into ``out`` (stopped after ``timeout`` s); its JSON, or why there is none."""
    script = ROOT / "benchmarks" / "bench_core.py"
    if not script.exists():
        return {"error": f"{script.relative_to(ROOT)} is missing: no core results"}
    cmd = [sys.executable, str(script), "--out", str(out)] + (["--sizes", "10000", "--repeats", "1"] if quick else [])
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"bench_core.py stopped after {timeout:.0f} s (its share of the time budget)",
                "seconds": time.perf_counter() - started}
    seconds = time.perf_counter() - started
    written = out / "results_core.json"
    if done.returncode != 0 or not written.exists() or written.stat().st_mtime < time.time() - seconds:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return {"error": f"bench_core.py failed (exit {done.returncode}): {last}", "seconds": seconds}
    return {"results": json.loads(written.read_text()), "seconds": seconds}


def earlier_core(out: Path) -> dict:
    """results_core.json from an earlier run of bench_core.py, when the core is not rerun (--skip-core)."""
    written = out / "results_core.json"
    if not written.exists():
        return {}
    when = dt.datetime.fromtimestamp(written.stat().st_mtime, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return {"results": json.loads(written.read_text()), "earlier_run": when}


# -- the whole report -----------------------------------------------------------------------------


def kernel_startup(folder: Path, repeats: int = 3) -> list[float]:
    """Seconds papermill takes for a one-cell notebook (kernel start, run ``pass``, shut down), ``repeats`` times.

    Runs in this process after papermill is imported, as ``analysis.cli.run_notebooks`` does.
    """
    import nbformat
    import papermill

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = folder / "empty.ipynb"
    nbformat.write(notebook, source)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        papermill.execute_notebook(str(source), str(folder / "empty_out.ipynb"), progress_bar=False,
                                   kernel_name="python3", cwd=str(folder))
        times.append(time.perf_counter() - started)
    return times


def run_report(folder: Path, timeout: float = 900.0) -> dict:
    """Time ``python -m analysis run`` on the bundled data into ``folder`` and split it into start-up and work."""
    notebooks = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    out, figures = folder / "build", folder / "figures"
    cmd = [sys.executable, "-m", "analysis", "run", "--out", str(out), "--figures", str(figures)]
    log = folder / "report.log"
    started = time.perf_counter()
    with log.open("w") as stdout:
        process = subprocess.Popen(cmd, cwd=ROOT, stdout=stdout, stderr=subprocess.STDOUT)
        try:
            _, status, usage = wait_with_timeout(process, timeout)
        except TimeoutError:
            return {"error": f"timed out after {timeout:.0f} s"}
    seconds = time.perf_counter() - started
    text = log.read_text(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    per_notebook = {name: float(s) for name, s in re.findall(r"(\S+\.ipynb) \.\.\. .*?done in ([\d.]+) s", text, re.DOTALL)}
    entry = {"command": "python -m analysis run --out <tmp>/build --figures <tmp>/figures",
             "notebooks": len(notebooks), "seconds": seconds, "exit_code": code, "per_notebook_seconds": per_notebook,
             "peak_rss_bytes": usage.ru_maxrss * 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime}
    if code != 0:
        entry["error"] = f"exit code {code}: " + " | ".join(text.strip().splitlines()[-3:])
        return entry
    startup = kernel_startup(folder)
    median = sorted(startup)[len(startup) // 2]
    entry.update(kernel_startup_runs=startup, kernel_startup_seconds=median * len(notebooks),
                 work_seconds=seconds - median * len(notebooks))
    return entry


def wait_with_timeout(process: subprocess.Popen, timeout: float):
    deadline = time.perf_counter() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            return pid, status, usage
        if time.perf_counter() > deadline:
            process.kill()
            os.wait4(process.pid, 0)
            raise TimeoutError
        time.sleep(0.1)


# -- goals and the results file ----------------------------------------------------------------------


def goals(pipeline: dict, report: dict, largest: int) -> list[dict]:
    """Each goal of issue 9 (pipeline and report): measured value (wall clock), limit, met, the miss and its
    ratio to the limit; ``at_least`` when a stage was stopped, so the value is a lower bound; ``cpu``: the
    same from CPU seconds, for reading the result on a loaded machine."""
    rows = []

    def add(goal, measured, limit, unit, at_least=False, cpu=None):
        met = None if measured is None else (False if at_least and measured > limit else measured <= limit)
        if at_least and measured is not None and measured <= limit:
            met = None  # a lower bound under the limit decides nothing
        rows.append({"goal": goal, "measured": measured, "at_least": at_least, "cpu": cpu, "limit": limit,
                     "unit": unit, "met": met, "over_by": measured - limit if met is False else None,
                     "ratio": None if measured is None else measured / limit})

    for stage, fit in pipeline.get("scaling", {}).items():
        bound = fit.get("k_at_least")
        add(f"stage '{stage}' scaling exponent k", bound if bound is not None else fit["k"],
            GOALS["stage_exponent"], "", at_least=bound is not None, cpu=None if bound is not None else fit["k_cpu"])
    if largest == max(bench_pipeline.SIZES):
        at = [r for r in pipeline.get("runs", []) if r["size"] == largest]
        ran = [r for r in at if "process_seconds" in r]
        complete = len(at) == len(bench_pipeline.STAGES) and not any("error" in r for r in at)
        stopped = any(r.get("timed_out") for r in at)
        usable = complete or stopped
        add(f"{largest:,} households end to end, time (sum of the 4 stage processes)",
            sum(r["process_seconds"] for r in ran) if usable else None, GOALS["end_to_end_seconds"], "s",
            at_least=not complete, cpu=sum(r["process_cpu_seconds"] for r in ran) if complete else None)
        add(f"{largest:,} households end to end, peak memory (largest stage process)",
            max(r["peak_rss_bytes"] for r in ran) / GB if usable else None, GOALS["end_to_end_bytes"] / GB, "GB",
            at_least=not complete)
    if report:
        ok = "error" not in report
        add("warm report on the bundled data (`python -m analysis run`)", report.get("seconds") if ok else None,
            GOALS["report_seconds"], "s", cpu=report.get("cpu_seconds") if ok else None)
    return rows


def fmt(value, digits=1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def markdown(results: dict, core_md: str | None) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `{results.get('command', 'benchmarks/run.py')}` on "
        f"{m['date_utc']}, commit {m['git_commit']}"
        + (" (analysis/ had uncommitted changes)" if m["analysis_modified_since_commit"] else "") + ".",
        f"Whole run: {fmt(results['seconds'] / 60, 1)} min (time budget {fmt(results['budget_seconds'] / 60, 1)} min).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu']} |",
        f"| cores | {m['usable_cores']} usable of {m['logical_cores']} logical |",
        f"| RAM | {fmt(m['ram_bytes'] / GB if m['ram_bytes'] else None)} GB |",
        f"| load average (1 min) at start | {fmt(m['load_average_1min_at_start'], 2)} |",
        f"| platform | {m['platform']} |",
        f"| Python | {m['python']} |",
        "| packages | " + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v) + " |",
        "",
        "## Goals (pipeline and report)",
        "",
        ("| goal | measured | limit | met | missed by | from CPU time |"),
        "|---|---:|---:|---|---|---:|",
    ]
    for g in results["goals"]:
        digits = 2 if g["unit"] in ("", "GB") else 1
        unit = f" {g['unit']}" if g["unit"] else ""
        met = "–" if g["met"] is None else ("yes" if g["met"] else "**no**")
        miss = "" if g["over_by"] is None else (f"{'≥ ' if g['at_least'] else ''}{fmt(g['over_by'], digits)}{unit} "
                                               f"({fmt(g['ratio'], 2)}× the limit)")
        lines.append(f"| {g['goal']} | {'≥ ' if g['at_least'] else ''}{fmt(g['measured'], digits)}{unit} | "
                     f"{fmt(g['limit'], digits)}{unit} | {met} | {miss} | "
                     f"{'' if g['cpu'] is None else fmt(g['cpu'], digits) + unit} |")
    lines += ["", ("*measured*: wall clock (the goal). *from CPU time*: the same figure from CPU seconds instead, "
              "which other load on the machine does not inflate. ≥: a lower bound (a stage was stopped at the time "
              "budget).")]
    p = results["pipeline"]
    lines += [
        "",
        "## Pipeline stages",
        "",
        ("Simulated surveys (seed 2012, Kobo CSV export with the simulator's injected faults), each stage in a fresh "
        "process reading the previous stage's files. *work*: inside the process after imports (reading inputs and "
        "writing outputs included); *process*: the whole process (interpreter start and imports included); "
        "*CPU s*: CPU seconds (work: of the process from the start of the work; process: user + system); "
        "*peak*: the process's maximum resident set size. "
        f"Weights and sizing use {p.get('replicates')} bootstrap replicates (raking redone in each). "
        "One run per cell."),
        "",
        ("| households (target) | responding | clean households | clean persons | stage | work s | work CPU s "
         "| process s | process CPU s | peak GB |"),
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    persons = {r["size"]: (r["counts"]["clean_households"], r["counts"]["clean_persons"])
               for r in p.get("runs", []) if r["stage"] == "clean" and "counts" in r}
    for r in p.get("runs", []):
        clean_hh, clean_persons = persons.get(r["size"], (None, None))
        head = (f"| {r['size']:,} | {fmt(r['households'], 0)} | {fmt(clean_hh, 0)} | {fmt(clean_persons, 0)} | "
                f"{r['stage']} |")
        if "seconds" not in r:
            lines.append(f"{head} {r['error']} | | {fmt(r.get('process_seconds'), 2)} | "
                         f"{fmt(r.get('process_cpu_seconds'), 1)} | "
                         f"{fmt(r['peak_rss_bytes'] / GB if 'peak_rss_bytes' in r else None, 2)} |")
            continue
        lines.append(f"{head} {fmt(r['seconds'], 2)} | {fmt(r['cpu_seconds'], 2)} | {fmt(r['process_seconds'], 2)} | "
                     f"{fmt(r['process_cpu_seconds'], 1)} | {fmt(r['peak_rss_bytes'] / GB, 2)} |")
    lines += ["", ("Scaling exponent k: least-squares slope of log work time on log responding households "
                   "(k_cpu: of the work's CPU time; k ≥: with a stopped stage's time as a lower bound):"), "",
              "| stage | sizes fitted | k | k_cpu | k ≥ | slope between consecutive sizes |", "|---|---|---:|---:|---:|---|"]
    lines += [f"| {stage} | {', '.join(f'{n:,}' for n in fit['sizes'])} | {fmt(fit['k'], 2)} | "
              f"{fmt(fit['k_cpu'], 2)} | {fmt(fit.get('k_at_least'), 2)} | "
              f"{', '.join(fmt(k, 2) for k in fit.get('k_steps', []))} |" for stage, fit in p.get("scaling", {}).items()]
    rep = results.get("report") or {}
    lines += ["", "## Whole report, warm", ""]
    if not rep:
        lines.append("Not run (--skip-report).")
    elif "error" in rep:
        lines.append(f"`python -m analysis run` failed: {rep['error']}")
    else:
        lines += [
            (f"`{rep['command']}` on the bundled survey, with .venv present and the files in the OS cache. "
            f"Kernel start-up = median papermill run of a one-cell notebook "
            f"({', '.join(fmt(s, 2) for s in rep['kernel_startup_runs'])} s) × {rep['notebooks']} notebooks."),
            "",
            "| part | seconds |",
            "|---|---:|",
            f"| total | {fmt(rep['seconds'], 1)} |",
            f"| kernel start-up | {fmt(rep['kernel_startup_seconds'], 1)} |",
            f"| work | {fmt(rep['work_seconds'], 1)} |",
        ]
        lines += [f"| — {name} (start-up included) | {fmt(s, 1)} |" for name, s in rep["per_notebook_seconds"].items()]
        lines.append(f"\nPeak memory of the largest single process: {fmt(rep['peak_rss_bytes'] / GB, 2)} GB.")
    lines += ["", "## Estimator core", ""]
    core = results.get("core") or {}
    if not core:
        lines.append("Not run (--skip-core) and no earlier results_core.json.")
    elif "error" in core:
        lines.append(f"No core results: {core['error']}")
    else:
        lines.append("From `benchmarks/bench_core.py` (results_core.json / results_core.md)"
                     + (f", {fmt(core['seconds'] / 60, 1)} min in this run." if "seconds" in core else
                        f": not rerun here (--skip-core); its run of {core['earlier_run']}."))
        if core_md:
            lines += ["", re.sub(r"^#+ .*\n", "", core_md.strip(), count=1).strip().replace("\n## ", "\n### ")]
    if results.get("analyse"):
        source = "From `benchmarks/bench_analyse.py` (median of the runs; CPU seconds beside wall clock)."
        lines += ["", "## Lists of analyses", "", source, "", bench_analyse.markdown(results["analyse"]).strip()]
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


def notes(results: dict) -> list[str]:
    """What a reader needs to weigh the numbers: machine load, what was not measured, failures."""
    m = results["machine"]
    out = [(f"The machine is shared: load average {m['load_average_1min_at_start']:.1f} on {m['usable_cores']} "
           "cores at start. Wall times include waiting for a CPU; the CPU-seconds column does not."),
           ("Ingest reads the Kobo CSV export. The .xlsx export is not benchmarked (openpyxl writes it in minutes "
           "per 15,000 households), so the surveys here are written by `simulate.write_survey` with "
           "`formats=(\"kobo_csv\",)`."),
           ("Peak memory is per stage process; the 150,000-household end-to-end memory figure is the largest of "
           "the four stages (each stage reads its input from files, as the notebooks do).")]
    generated = [(r["size"], r["generated_seconds"]) for r in results["pipeline"]["runs"]
                 if r["stage"] == "clean" and r.get("generated_seconds")]
    out += [f"The {n:,}-household survey was generated in this run ({s:.0f} s, not counted above; later runs "
            f"read it from {results['pipeline']['cache']})." for n, s in generated]
    if "error" in (results.get("core") or {}):
        out.append(f"Core benchmark: {results['core']['error']}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="folder for results.md/.json (default: benchmarks/)")
    ap.add_argument("--quick", action="store_true", help="smallest sizes only")
    ap.add_argument("--skip-core", action="store_true",
                    help="do not rerun bench_core.py; include the results_core.json already in --out, if any")
    ap.add_argument("--skip-report", action="store_true")
    ap.add_argument("--budget", type=float, default=840.0,
                    help="seconds for the whole run (core at most 45%%; pipeline stages are stopped at the end)")
    ap.add_argument("--cache", type=Path, default=bench_pipeline.default_cache(), help="simulated-survey cache")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leliu-bench-run-") as tmp:
        tmp = Path(tmp)
        out = args.out or (tmp / "results" if args.quick else ROOT / "benchmarks")
        out.mkdir(parents=True, exist_ok=True)
        results = {"command": " ".join(["benchmarks/run.py", *sys.argv[1:]]), "quick": args.quick,
                   "budget_seconds": args.budget, "machine": machine(), "notes": []}
        sizes = [min(bench_pipeline.SIZES)] if args.quick else list(bench_pipeline.SIZES)
        if args.skip_core:
            results["core"] = earlier_core(out)
        else:
            print("[bench] estimator core (bench_core.py)", flush=True)
            results["core"] = run_core(out, args.quick, 0.45 * args.budget)
            print(f"  {results['core'].get('error', 'done')}", flush=True)
        results["report"] = {}
        if not args.skip_report:
            print("[bench] python -m analysis run on the bundled data", flush=True)
            (tmp / "report").mkdir()
            results["report"] = run_report(tmp / "report")
        print("[bench] lists of analyses (bench_analyse.py)", flush=True)
        results["analyse"] = bench_analyse.run(1 if args.quick else 3)
        print(f"[bench] pipeline stages at {', '.join(f'{n:,}' for n in sizes)} households", flush=True)
        results["pipeline"] = bench_pipeline.run_pipeline(sizes, args.cache, tmp / "pipeline",
                                                          deadline=started + args.budget - 30)
        results["notes"] = notes(results)
        results["goals"] = goals(results["pipeline"], results["report"], max(sizes))
        results["seconds"] = time.perf_counter() - started
        core_md = out / "results_core.md"
        (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        text = markdown(results, core_md.read_text() if "results" in results["core"] and core_md.exists() else None)
        (out / "results.md").write_text(text)
        print(text)
        if args.out is None and args.quick:
            print("(--quick: results not kept; pass --out to keep them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
