"""`make bench`: the estimator-core benchmark, the whole report and the pipeline stages, in one results file.

    python benchmarks/run.py --out benchmarks [--quick] [--skip-core] [--skip-report] [--budget SECONDS]

1. Core: ``benchmarks/bench_core.py`` in a subprocess (it writes results_core.json/.md into --out), given
   at most 45% of ``--budget``; a missing, failing or stopped script is reported and the run carries on.
2. Report: ``python -m analysis run`` on the bundled data (warm: environment installed, files cached)
   into an empty temporary folder, the same again (nothing changed), and the notebook run
   (``--notebooks``), whose outputs are compared by sha256.
3. Lists of analyses: ``benchmarks/bench_analyse.py`` (a 500-row list on 10,000 households; 6,760 crossed
   groups of 50,000 rows), in this process.
4. Pipeline: ``benchmarks/bench_pipeline.py`` — clean, weights, demand and team sizing on simulated
   surveys of 1,500 / 15,000 / 150,000 households, one fresh process per stage; a stage still running
   when the budget ends is stopped and recorded as a lower bound.
Writes results.json and results.md into --out, with the machine description and each goal of
issues 9 and 20 marked met or missed (and by how much). ``--quick``: smallest sizes only (core 10,000 rows,
one repeat; pipeline 1,500 households); results then go to a temporary folder unless --out is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
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
GOALS = {
    "stage_exponent": 1.1,
    "end_to_end_seconds": 60.0,
    "end_to_end_bytes": 4 * GB,
    "report_seconds": 15.0,
}
PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "pyarrow",
    "openpyxl",
    "papermill",
    "nbclient",
    "ipykernel",
    "matplotlib",
    "pyyaml",
)


# -- machine --------------------------------------------------------------------------------------


def machine() -> dict:
    """CPU model, cores, RAM, load, Python and package versions, date and git commit."""
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
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
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "analysis"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_bytes": ram,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "git_commit": commit.stdout.strip() or None,
        "analysis_modified_since_commit": bool(dirty.stdout.strip()),
        "load_average_1min_at_start": os.getloadavg()[0],
    }


# -- core -----------------------------------------------------------------------------------------


def run_core(out: Path, quick: bool, timeout: float) -> dict:
    """Run bench_core.py into ``out`` (stopped after ``timeout`` s); its JSON, or why there is none."""
    script = ROOT / "benchmarks" / "bench_core.py"
    if not script.exists():
        return {"error": f"{script.relative_to(ROOT)} is missing: no core results"}
    cmd = [sys.executable, str(script), "--out", str(out)] + (
        ["--sizes", "10000", "--repeats", "1"] if quick else []
    )
    started = time.perf_counter()
    # its own process group, so that stopping it also stops the R and svy runs it started (left running,
    # they would load the machine while the report and the pipeline stages are timed)
    process = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {
            "error": f"bench_core.py stopped after {timeout:.0f} s (its share of the time budget)",
            "seconds": time.perf_counter() - started,
        }
    done = subprocess.CompletedProcess(cmd, process.returncode, "", stderr)
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


def _timed(cmd: list[str], log: Path, timeout: float) -> dict:
    """Run ``cmd`` from the repository root; wall seconds, CPU seconds (user + system of it and its children,
    from ``wait4``), peak memory, exit code and the last lines it printed."""
    started = time.perf_counter()
    with log.open("w") as stdout:
        process = subprocess.Popen(cmd, cwd=ROOT, stdout=stdout, stderr=subprocess.STDOUT)
        try:
            _, status, usage = wait_with_timeout(process, timeout)
        except TimeoutError:
            return {"error": f"timed out after {timeout:.0f} s"}
    entry = {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "exit_code": os.waitstatus_to_exitcode(status),
        "load_average": os.getloadavg()[0],
    }
    if entry["exit_code"] != 0:
        entry["error"] = f"exit code {entry['exit_code']}: " + " | ".join(
            log.read_text(errors="replace").strip().splitlines()[-3:]
        )
    return entry


def output_digests(folder: Path) -> dict[str, str]:
    """sha256 of every output file under ``folder`` except executed notebooks, the stage cache's records and
    the PDF (Chromium stamps the print time into it)."""
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and not {"notebooks", ".stage_cache"} & set(p.relative_to(folder).parts)
        and p.suffix != ".pdf"
    }


def run_report(folder: Path, timeout: float = 900.0, notebooks: bool = True) -> dict:
    """Time the main job on the bundled data: ``python -m analysis run`` into an empty folder (first run), the
    same command again (nothing changed: every stage skipped), and, with ``notebooks``, the notebook run
    (``--notebooks``) into another empty folder, whose output files must have the same sha256."""
    base = [sys.executable, "-m", "analysis", "run"]
    first_out = folder / "first"
    first = _timed(
        base + ["--out", str(first_out), "--figures", str(first_out / "figures")],
        folder / "first.log",
        timeout,
    )
    entry = {
        "command": "python -m analysis run --out <tmp>/build --figures <tmp>/build/figures",
        "first": first,
    }
    if "error" in first:
        entry["error"] = "first run: " + first["error"]
        return entry
    entry["rerun"] = _timed(
        base + ["--out", str(first_out), "--figures", str(first_out / "figures")],
        folder / "rerun.log",
        timeout,
    )
    entry["stages_seconds"] = {
        stage: float(s)
        for stage, s in re.findall(
            r"\] (\w+) done in ([\d.]+) s", (folder / "first.log").read_text(errors="replace")
        )
    }
    if notebooks:
        nb_out = folder / "notebooks"
        run = _timed(
            base + ["--notebooks", "--out", str(nb_out), "--figures", str(nb_out / "figures")],
            folder / "notebooks.log",
            timeout,
        )
        if "error" not in run:
            mine, theirs = output_digests(first_out), output_digests(nb_out)
            run["files_compared"] = len(mine)
            run["files_differing"] = sorted(
                n for n in set(mine) | set(theirs) if mine.get(n) != theirs.get(n)
            )
        entry["notebooks"] = run
    entry.update(
        seconds=first["seconds"], cpu_seconds=first["cpu_seconds"], peak_rss_bytes=first["peak_rss_bytes"]
    )
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
    """Each goal of issue 20 (pipeline and report): measured value (wall clock), limit, met, the miss and its
    ratio to the limit; ``at_least`` when a stage was stopped, so the value is a lower bound; ``cpu``: the
    same from CPU seconds, for reading the result on a loaded machine."""
    rows = []

    def add(goal, measured, limit, unit, at_least=False, cpu=None):
        met = None if measured is None else (False if at_least and measured > limit else measured <= limit)
        if at_least and measured is not None and measured <= limit:
            met = None  # a lower bound under the limit decides nothing
        rows.append(
            {
                "goal": goal,
                "measured": measured,
                "at_least": at_least,
                "cpu": cpu,
                "limit": limit,
                "unit": unit,
                "met": met,
                "over_by": measured - limit if met is False else None,
                "ratio": None if measured is None else measured / limit,
            }
        )

    for stage, fit in pipeline.get("scaling", {}).items():
        bound = fit.get("k_at_least")
        add(
            f"stage '{stage}' scaling exponent k",
            bound if bound is not None else fit["k"],
            GOALS["stage_exponent"],
            "",
            at_least=bound is not None,
            cpu=None if bound is not None else fit["k_cpu"],
        )
    if largest == max(bench_pipeline.SIZES):
        at = [r for r in pipeline.get("runs", []) if r["size"] == largest]
        ran = [r for r in at if "process_seconds" in r]
        complete = len(at) == len(bench_pipeline.STAGES) and not any("error" in r for r in at)
        stopped = any(r.get("timed_out") for r in at)
        usable = complete or stopped
        add(
            f"{largest:,} households end to end, time (sum of the 4 stage processes)",
            sum(r["process_seconds"] for r in ran) if usable else None,
            GOALS["end_to_end_seconds"],
            "s",
            at_least=not complete,
            cpu=sum(r["process_cpu_seconds"] for r in ran) if complete else None,
        )
        add(
            f"{largest:,} households end to end, peak memory (largest stage process)",
            max(r["peak_rss_bytes"] for r in ran) / GB if usable else None,
            GOALS["end_to_end_bytes"] / GB,
            "GB",
            at_least=not complete,
        )
    if report:
        ok = "error" not in report
        add(
            "warm report on the bundled data (`python -m analysis run`)",
            report.get("seconds") if ok else None,
            GOALS["report_seconds"],
            "s",
            cpu=report.get("cpu_seconds") if ok else None,
        )
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
        + (" (analysis/ had uncommitted changes)" if m["analysis_modified_since_commit"] else "")
        + ".",
        f"Whole run: {fmt(results['seconds'] / 60, 1)} min (time budget "
        f"{fmt(results['budget_seconds'] / 60, 1)} min).",
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
        miss = (
            ""
            if g["over_by"] is None
            else (
                f"{'≥ ' if g['at_least'] else ''}{fmt(g['over_by'], digits)}{unit} "
                f"({fmt(g['ratio'], 2)}× the limit)"
            )
        )
        lines.append(
            f"| {g['goal']} | {'≥ ' if g['at_least'] else ''}{fmt(g['measured'], digits)}{unit} | "
            f"{fmt(g['limit'], digits)}{unit} | {met} | {miss} | "
            f"{'' if g['cpu'] is None else fmt(g['cpu'], digits) + unit} |"
        )
    lines += [
        "",
        (
            "*measured*: wall clock (the goal). *from CPU time*: the same figure from CPU seconds instead, "
            "which other load on the machine does not inflate. ≥: a lower bound (a stage was stopped at the "
            "time "
            "budget)."
        ),
    ]
    p = results["pipeline"]
    lines += [
        "",
        "## Pipeline stages",
        "",
        (
            "Simulated surveys (seed 2012, Kobo CSV export with the simulator's injected faults), each stage "
            "in a fresh "
            "process reading the previous stage's files. *work*: inside the process after imports (reading "
            "inputs and "
            "writing outputs included); *process*: the whole process (interpreter start and imports "
            "included); "
            "*CPU s*: CPU seconds (work: of the process from the start of the work; process: user + system); "
            "*peak*: the process's maximum resident set size. "
            f"Weights and sizing use {p.get('replicates')} bootstrap replicates (raking redone in each). "
            "One run per cell."
        ),
        "",
        (
            "| households (target) | responding | clean households | clean persons | stage | work s | work "
            "CPU s "
            "| process s | process CPU s | peak GB |"
        ),
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    persons = {
        r["size"]: (r["counts"]["clean_households"], r["counts"]["clean_persons"])
        for r in p.get("runs", [])
        if r["stage"] == "clean" and "counts" in r
    }
    for r in p.get("runs", []):
        clean_hh, clean_persons = persons.get(r["size"], (None, None))
        head = (
            f"| {r['size']:,} | {fmt(r['households'], 0)} | {fmt(clean_hh, 0)} | {fmt(clean_persons, 0)} | "
            f"{r['stage']} |"
        )
        if "seconds" not in r:
            lines.append(
                f"{head} {r['error']} | | {fmt(r.get('process_seconds'), 2)} | "
                f"{fmt(r.get('process_cpu_seconds'), 1)} | "
                f"{fmt(r['peak_rss_bytes'] / GB if 'peak_rss_bytes' in r else None, 2)} |"
            )
            continue
        lines.append(
            f"{head} {fmt(r['seconds'], 2)} | {fmt(r['cpu_seconds'], 2)} | {fmt(r['process_seconds'], 2)} | "
            f"{fmt(r['process_cpu_seconds'], 1)} | {fmt(r['peak_rss_bytes'] / GB, 2)} |"
        )
    lines += [
        "",
        (
            "Scaling exponent k: least-squares slope of log work time on log responding households "
            "(k_cpu: of the work's CPU time; k ≥: with a stopped stage's time as a lower bound):"
        ),
        "",
        "| stage | sizes fitted | k | k_cpu | k ≥ | slope between consecutive sizes |",
        "|---|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {stage} | {', '.join(f'{n:,}' for n in fit['sizes'])} | {fmt(fit['k'], 2)} | "
        f"{fmt(fit['k_cpu'], 2)} | {fmt(fit.get('k_at_least'), 2)} | "
        f"{', '.join(fmt(k, 2) for k in fit.get('k_steps', []))} |"
        for stage, fit in p.get("scaling", {}).items()
    ]
    rep = results.get("report") or {}
    lines += ["", "## Whole report, warm", ""]
    if not rep:
        lines.append("Not run (--skip-report).")
    elif "error" in rep:
        lines.append(f"`python -m analysis run` failed: {rep['error']}")
    else:

        def row(name, run):
            if not run:
                return f"| {name} | not run | | | | |"
            if "error" in run:
                return f"| {name} | {run['error']} | | | | |"
            return (
                f"| {name} | {fmt(run['seconds'], 1)} | {fmt(run['cpu_seconds'], 1)} | "
                f"{fmt(run['peak_rss_bytes'] / GB, 2)} | {fmt(run['load_average'], 1)} |"
            )

        lines += [
            (
                f"`{rep['command']}` on the bundled survey, with .venv present "
                "and the files in the OS cache: into an "
                "empty folder (first run), the same command again (nothing changed, every stage skipped by "
                "the stage "
                "cache), and the notebook run (`--notebooks`, one papermill kernel per notebook) "
                "into another empty "
                "folder. *CPU s*: user + system of the process and its children (kernels, Chromium)."
            ),
            "",
            "| run | wall s | CPU s | peak GB | load (1 min) at end |",
            "|---|---:|---:|---:|---:|",
            row("first run (empty output folder)", rep.get("first")),
            row("rerun, nothing changed", rep.get("rerun")),
            row("notebook run (`--notebooks`)", rep.get("notebooks")),
        ]
        if rep.get("stages_seconds"):
            lines.append(
                "\nFirst run by stage (wall s): "
                + ", ".join(f"{stage} {fmt(s, 1)}" for stage, s in rep["stages_seconds"].items())
                + "."
            )
        nb = rep.get("notebooks") or {}
        if "files_compared" in nb:
            lines.append(
                f"\nOutput files of the first run and the notebook run "
                f"(sha256, {nb['files_compared']} files, "
                "PDF and executed notebooks left out): "
                + (
                    "identical."
                    if not nb["files_differing"]
                    else f"**{len(nb['files_differing'])} differ**: {', '.join(nb['files_differing'][:10])}."
                )
            )
    lines += ["", "## Estimator core", ""]
    core = results.get("core") or {}
    if not core:
        lines.append("Not run (--skip-core) and no earlier results_core.json.")
    elif "error" in core:
        lines.append(f"No core results: {core['error']}")
    else:
        lines.append(
            "From `benchmarks/bench_core.py` (results_core.json / results_core.md)"
            + (
                f", {fmt(core['seconds'] / 60, 1)} min in this run."
                if "seconds" in core
                else f": not rerun here (--skip-core); its run of {core['earlier_run']}."
            )
        )
        if core_md:
            lines += [
                "",
                re.sub(r"^#+ .*\n", "", core_md.strip(), count=1).strip().replace("\n## ", "\n### "),
            ]
    if results.get("analyse"):
        source = "From `benchmarks/bench_analyse.py` (median of the runs; CPU seconds beside wall clock)."
        lines += [
            "",
            "## Lists of analyses",
            "",
            source,
            "",
            bench_analyse.markdown(results["analyse"]).strip(),
        ]
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


def notes(results: dict) -> list[str]:
    """What a reader needs to weigh the numbers: machine load, what was not measured, failures."""
    m = results["machine"]
    out = [
        (
            f"The machine is shared: load average {m['load_average_1min_at_start']:.1f} on "
            f"{m['usable_cores']} "
            "cores at start. Wall times include waiting for a CPU; the CPU-seconds column does not."
        ),
        (
            "Ingest reads the Kobo CSV export. The .xlsx export is not benchmarked (openpyxl writes it in "
            "minutes "
            "per 15,000 households), so the surveys here are written by `simulate.write_survey` with "
            '`formats=("kobo_csv",)`.'
        ),
        (
            "Peak memory is per stage process; the 150,000-household end-to-end memory figure is the largest "
            "of "
            "the four stages (each stage reads its input from files, as the notebooks do)."
        ),
    ]
    generated = [
        (r["size"], r["generated_seconds"])
        for r in results["pipeline"]["runs"]
        if r["stage"] == "clean" and r.get("generated_seconds")
    ]
    out += [
        f"The {n:,}-household survey was generated in this run ({s:.0f} s, not counted above; later runs "
        f"read it from {results['pipeline']['cache']})."
        for n, s in generated
    ]
    if "error" in (results.get("core") or {}):
        out.append(f"Core benchmark: {results['core']['error']}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out", type=Path, default=None, help="folder for results.md/.json (default: benchmarks/)"
    )
    ap.add_argument("--quick", action="store_true", help="smallest sizes only")
    ap.add_argument(
        "--skip-core",
        action="store_true",
        help="do not rerun bench_core.py; include the results_core.json already in --out, if any",
    )
    ap.add_argument("--skip-report", action="store_true")
    ap.add_argument(
        "--budget",
        type=float,
        default=840.0,
        help="seconds for the whole run (core at most 45%%; pipeline stages are stopped at the end)",
    )
    ap.add_argument(
        "--cache", type=Path, default=bench_pipeline.default_cache(), help="simulated-survey cache"
    )
    args = ap.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leliu-bench-run-") as tmp:
        tmp = Path(tmp)
        out = args.out or (tmp / "results" if args.quick else ROOT / "benchmarks")
        out.mkdir(parents=True, exist_ok=True)
        results = {
            "command": " ".join(["benchmarks/run.py", *sys.argv[1:]]),
            "quick": args.quick,
            "budget_seconds": args.budget,
            "machine": machine(),
            "notes": [],
        }
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
        results["pipeline"] = bench_pipeline.run_pipeline(
            sizes, args.cache, tmp / "pipeline", deadline=started + args.budget - 30
        )
        results["notes"] = notes(results)
        results["goals"] = goals(results["pipeline"], results["report"], max(sizes))
        results["seconds"] = time.perf_counter() - started
        core_md = out / "results_core.md"
        (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        text = markdown(
            results, core_md.read_text() if "results" in results["core"] and core_md.exists() else None
        )
        (out / "results.md").write_text(text)
        print(text)
        if args.out is None and args.quick:
            print("(--quick: results not kept; pass --out to keep them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
