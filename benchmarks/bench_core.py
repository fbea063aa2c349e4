"""Benchmark of the estimator core (analysis.survey) against R `survey` and, when installed, `svy`.

    python benchmarks/bench_core.py --out benchmarks/ [--sizes 10000 100000 1000000] [--repeats 3]

Synthetic stratified cluster samples of each size (50 strata × 20 PSUs, a numeric ``y``, a binary
``b``, a 10-level domain ``dom`` and two raking variables ``sex``/``age``) are generated once,
deterministically, and written to one CSV per size that every tool reads. Four operations, each
timed as design construction + estimate: (a) mean of y with SE, (b) mean of y in 10 domains,
(c) raking to the sex and age margins then the mean, (d) Rao–Wu bootstrap SE with 200 replicates;
and, at ``--crossed-size`` rows (default 50,000) only, (e) ``crossed``: mean of y in the 6,760
domains of g1 (26 levels) × g2 (260 levels), every domain present (R: ``svyby(~y, ~g1 + g2, ...)``).
Every (tool, size, operation) runs in its own process, so its peak memory (ru_maxrss from wait4,
which includes reading the data) is its own; each time is the median of ``--repeats`` runs (R at
1,000,000 rows: ``--r-repeats-large``, as one R bootstrap run there takes over a minute).
Agreement: the estimate and SE of every operation must match R to 1e-8 (relative); the bootstrap's
replicates are random, so its SE is compared with R computing the SE from our replicate factors.
Writes results_core.json and results_core.md into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OPS = ("mean", "domains", "rake", "bootstrap")
CROSSED = (26, 260)  # levels of g1 and g2: 6,760 crossed domains (op "crossed", at --crossed-size rows only)
N_STRATA, PSU_PER_STRATUM, REPLICATES, SEED = 50, 20, 200, 20121
AGREE = 1e-8
SEX_SHARE = {"f": 0.51, "m": 0.49}
AGE_SHARE = {"a0": 0.2, "a1": 0.3, "a2": 0.3, "a3": 0.2}


def make_data(n: int, seed: int = SEED) -> pd.DataFrame:
    """A stratified two-level sample of n rows with PSU effects, deterministic in (n, seed)."""
    rng = np.random.default_rng([seed, n])
    n_psu = N_STRATA * PSU_PER_STRATUM
    psu = np.sort(rng.integers(0, n_psu, n))
    psu[:n_psu] = np.arange(n_psu)  # every PSU sampled
    psu.sort()
    effect = rng.normal(0, 3, n_psu)
    frame = pd.DataFrame(
        {
            "stratum": psu // PSU_PER_STRATUM,
            "psu": psu,
            "w": rng.uniform(20, 200, n).round(4),
            "y": (50 + effect[psu] + rng.normal(0, 10, n)).round(4),
            "b": (rng.random(n) < 0.3 + 0.02 * (psu % 10)).astype(int),
            "dom": rng.integers(0, 10, n),
            "sex": rng.choice(list(SEX_SHARE), n),
            "age": rng.choice(list(AGE_SHARE), n, p=[0.25, 0.25, 0.25, 0.25]),
        }
    )
    # the crossed domains (drawn last, so the columns above are as before): 26 × 260 cells, each present
    cell = rng.integers(0, CROSSED[0] * CROSSED[1], n)
    cell[: min(n, CROSSED[0] * CROSSED[1])] = np.arange(min(n, CROSSED[0] * CROSSED[1]))
    return frame.assign(g1=cell // CROSSED[1], g2=cell % CROSSED[1])


def margins(df: pd.DataFrame) -> dict:
    total = round(float(df["w"].sum()) * 1.1)
    return {
        "sex": {k: total * v for k, v in SEX_SHARE.items()},
        "age": {k: total * v for k, v in AGE_SHARE.items()},
    }


# -- the Python side, run in a child process ----------------------------------------------------


def run_ours(data: Path, margins_file: Path, op: str, repeats: int, factors_out: Path | None) -> dict:
    from analysis.survey import Design

    df = pd.read_csv(data, dtype={"sex": str, "age": str})
    m = json.loads(margins_file.read_text())
    times, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        d = Design(df, weights="w", strata="stratum", ids="psu")
        if op == "mean":
            res = d.mean("y")
        elif op == "domains":
            res = d.mean("y", by="dom")
        elif op == "crossed":
            res = d.mean("y", by=["g1", "g2"])
        elif op == "rake":
            res = d.rake({"sex": m["sex"], "age": m["age"]}, tol=1e-10).mean("y")
        else:
            rep = d.replicate("bootstrap", replicates=REPLICATES, seed=SEED)
            res = rep.mean("y")
        times.append(time.perf_counter() - t0)
    if op == "bootstrap" and factors_out is not None:
        pd.DataFrame(rep._F, columns=[f"r{i}" for i in range(rep._F.shape[1])]).to_csv(
            factors_out, index=False
        )
    return {"tool": "ours", "times": times, "estimate": res["estimate"].tolist(), "se": res["se"].tolist()}


def run_svy(data: Path, margins_file: Path, op: str, repeats: int) -> dict:
    """The same operations with the `svy` package (optional extra; with-replacement design as ours)."""
    import polars as pl
    import svy

    df = pl.read_csv(data, schema_overrides={"sex": pl.Utf8, "age": pl.Utf8})
    m = json.loads(margins_file.read_text())
    times, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        s = svy.Sample(df, svy.Design(stratum="stratum", psu="psu", wgt="w", wr=True))
        if op == "mean":
            res = s.estimation.mean("y")
        elif op == "domains":
            res = s.estimation.mean("y", by="dom")
        elif op == "crossed":
            res = s.estimation.mean("y", by=["g1", "g2"])
        elif op == "rake":
            res = s.weighting.rake(controls={"sex": m["sex"], "age": m["age"]}, tol=1e-10).estimation.mean(
                "y"
            )
        else:
            boot = s.weighting.create_bs_wgts(REPLICATES, kind="rao-wu", rstate=SEED)
            res = boot.estimation.mean("y", method="replication")
        times.append(time.perf_counter() - t0)
    table = res.to_polars()
    if "dom" in table.columns:
        table = table.sort("dom")
    elif "g1" in table.columns:
        table = table.sort(["g1", "g2"])
    return {
        "tool": f"svy {svy.__version__}",
        "times": times,
        "estimate": table["est"].to_list(),
        "se": table["se"].to_list(),
    }


# -- the driver ---------------------------------------------------------------------------------


def child(cmd: list[str], out_json: Path, timeout: float) -> dict:
    """Run one job in its own process; its result JSON plus its own peak RSS (MB)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    t0 = time.monotonic()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            return {"error": f"timed out after {timeout:.0f} s"}
        time.sleep(0.05)
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0 or not out_json.exists():
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit status {status}"}
    out = json.loads(out_json.read_text())
    out["peak_mb"] = usage.ru_maxrss / 1024
    return out


def median(v):
    return float(np.median(v)) if v else None


def agree(a: dict, b: dict) -> float | None:
    """Largest relative difference of estimate and SE between two results (None if missing)."""
    if not a or not b or "estimate" not in a or "estimate" not in b:
        return None
    x = np.array(a["estimate"] + a["se"], dtype=float)
    y = np.array(b["estimate"] + b["se"], dtype=float)
    if x.shape != y.shape:
        return float("inf")
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300)))


def machine() -> dict:
    cpu = ""
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1min_at_start": load,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--r-repeats-large", type=int, default=1, help="R runs per operation at ≥ 1,000,000 rows")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per child process")
    ap.add_argument(
        "--crossed-size",
        type=int,
        default=50_000,
        help="rows of the crossed-domain case (mean of y in 6,760 g1 × g2 domains); 0: skip it",
    )
    ap.add_argument("--only-crossed", action="store_true", help="run the crossed-domain case alone")
    ap.add_argument(
        "--child", nargs=5, metavar=("TOOL", "DATA", "MARGINS", "OP", "REPEATS"), help=argparse.SUPPRESS
    )
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--factors-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        tool, data, marg, op, repeats = args.child
        fn = run_ours if tool == "ours" else run_svy
        extra = (args.factors_out,) if tool == "ours" else ()
        args.child_out.write_text(json.dumps(fn(Path(data), Path(marg), op, int(repeats), *extra)))
        return 0

    rscript = shutil.which("Rscript")
    r_version = None
    if rscript:
        r_version = (
            subprocess.run(
                [rscript, "-e", "cat(R.version.string, as.character(packageVersion('survey')))"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            or None
        )
        if r_version is None:
            rscript = None
    svy_ok = (
        subprocess.run([sys.executable, "-c", "import svy"], capture_output=True, check=False).returncode == 0
    )
    notes = []
    if not rscript:
        notes.append("R survey skipped: Rscript (with the survey and jsonlite packages) was not found.")
    if not svy_ok:
        notes.append(
            "svy skipped: the package is not importable in this environment (optional extra: pip install "
            "svy)."
        )
    else:
        notes.append(
            "svy bootstrap SEs come from its own random replicates: only its estimate is compared there."
        )

    results = {
        "machine": machine(),
        "r": r_version,
        "replicates": REPLICATES,
        "agreement_tolerance": AGREE,
        "sizes": {},
        "notes": notes,
    }
    with tempfile.TemporaryDirectory(prefix="bench_core_") as tmp:
        tmp = Path(tmp)
        plan = [] if args.only_crossed else [(n, OPS) for n in args.sizes]
        if args.crossed_size:
            plan.append((args.crossed_size, ("crossed",)))
        for n, ops in plan:
            df = make_data(n)
            data = tmp / f"core_{n}.csv"
            df.to_csv(data, index=False)
            marg = tmp / f"margins_{n}.json"
            marg.write_text(json.dumps(margins(df)))
            size = results["sizes"].setdefault(str(n), {})
            for op in ops:
                print(f"[bench_core] n={n:,} {op}", file=sys.stderr, flush=True)
                entry = {}
                out = tmp / f"ours_{n}_{op}.json"
                factors = tmp / f"factors_{n}.csv"
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    "ours",
                    str(data),
                    str(marg),
                    op,
                    str(args.repeats),
                    "--child-out",
                    str(out),
                    "--factors-out",
                    str(factors),
                ]
                entry["ours"] = child(cmd, out, args.timeout)
                if svy_ok:
                    sout = tmp / f"svy_{n}_{op}.json"
                    scmd = [
                        sys.executable,
                        __file__,
                        "--child",
                        "svy",
                        str(data),
                        str(marg),
                        op,
                        str(args.repeats),
                        "--child-out",
                        str(sout),
                    ]
                    entry["svy"] = child(scmd, sout, args.timeout)
                if rscript:
                    reps = args.r_repeats_large if n >= 1_000_000 else args.repeats
                    rout = tmp / f"r_{n}_{op}.json"
                    rcmd = [
                        rscript,
                        str(ROOT / "benchmarks" / "bench_core.R"),
                        str(data),
                        str(marg),
                        op,
                        str(reps),
                        str(rout),
                    ]
                    entry["R survey"] = child(rcmd, rout, args.timeout)
                    if op == "bootstrap" and factors.exists():
                        cout = tmp / f"rcheck_{n}.json"
                        ccmd = [
                            rscript,
                            str(ROOT / "benchmarks" / "bench_core.R"),
                            str(data),
                            str(marg),
                            "bootstrap_check",
                            "1",
                            str(cout),
                            str(factors),
                        ]
                        entry["R survey, our replicates"] = child(ccmd, cout, args.timeout)
                size[op] = summarise(op, entry)
            data.unlink()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results_core.json").write_text(json.dumps(results, indent=2))
    (args.out / "results_core.md").write_text(markdown(results))
    print((args.out / "results_core.md").read_text())
    return 0


KEPT_VALUES = 20  # estimates and SEs kept in results_core.json up to this many (crossed: 6,760)


def _kept(t: dict) -> dict:
    """A tool's estimates and SEs for the results file: the values when few, else how many there were
    (their agreement with R is computed before and kept)."""
    if len(t.get("estimate") or []) <= KEPT_VALUES:
        return {"estimate": t.get("estimate"), "se": t.get("se")}
    return {"values": len(t["estimate"])}


def summarise(op: str, entry: dict) -> dict:
    """Per tool: median time, runs, peak memory, results; our speed-up and each tool's agreement with R."""
    ours = entry.get("ours", {})
    r = entry.get("R survey")
    out = {"tools": {}, "speedup": {}, "max_rel_diff_vs_R": {}, "agrees": {}}
    for tool, t in entry.items():
        if tool == "R survey, our replicates":
            continue
        out["tools"][tool] = {
            "median_s": median(t.get("times", [])),
            "runs": len(t.get("times", [])),
            "peak_mb": t.get("peak_mb"),
            "error": t.get("error"),
            **_kept(t),
        }
        if tool != "ours" and t.get("times") and ours.get("times"):
            out["speedup"][tool] = median(t["times"]) / median(ours["times"])
    for tool, t in entry.items():
        if tool in ("R survey", "R survey, our replicates"):
            continue
        if op == "bootstrap":
            if tool == "ours":
                diff = agree(t, entry.get("R survey, our replicates"))  # same replicates: estimate and SE
            else:
                diff = agree(
                    {"estimate": t.get("estimate", []), "se": []} if "estimate" in t else {},
                    {"estimate": r.get("estimate", []), "se": []} if r and "estimate" in r else {},
                )
        else:
            diff = agree(t, r)
        out["max_rel_diff_vs_R"][tool] = diff
        out["agrees"][tool] = None if diff is None else diff <= AGREE
    return out


def markdown(res: dict) -> str:
    lines = [
        "# Estimator core benchmark",
        "",
        (
            "Written by `python benchmarks/bench_core.py`; design construction + operation, median of the "
            "runs "
            "shown, peak memory of the process (includes reading the CSV). Speed-up = peer time / our time. "
            f"Agreement: estimate and SE within {res['agreement_tolerance']:g} relative of R "
            "(bootstrap: R's SE from our replicate factors, since replicates are random)."
        ),
        "",
        (
            f"Machine: {res['machine']['cpu']}, {res['machine']['cores']} cores, load average "
            f"{res['machine']['load_average_1min_at_start']:.1f} at start (shared with other work). R: "
            f"{res['r']}."
        ),
        "",
        (
            "| rows | operation | ours (s) | ours MB | R survey (s) | R runs | R MB | svy (s) | svy MB "
            "| speed-up vs R | vs svy | ours = R | svy = R |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]

    def fmt(v, f):
        return "–" if v is None else format(v, f)

    def verdict(o, tool):
        ok = o["agrees"].get(tool)
        if ok is None:
            return "–"
        return ("yes" if ok else "NO") + f" ({o['max_rel_diff_vs_R'][tool]:.0e})"

    for n, ops in res["sizes"].items():
        for op, o in ops.items():
            us, r, sv = (o["tools"].get(t, {}) for t in ("ours", "R survey", "svy"))
            lines.append(
                f"| {int(n):,} | {op} | {fmt(us.get('median_s'), '.3f')} | {fmt(us.get('peak_mb'), '.0f')} | "
                f"{fmt(r.get('median_s'), '.2f')} | {r.get('runs', '–')} | {fmt(r.get('peak_mb'), '.0f')} | "
                f"{fmt(sv.get('median_s'), '.2f')} | {fmt(sv.get('peak_mb'), '.0f')} | "
                f"{fmt(o['speedup'].get('R survey'), '.1f')} | {fmt(o['speedup'].get('svy'), '.1f')} | "
                f"{verdict(o, 'ours')} | {verdict(o, 'svy')} |"
            )
            for tool, t in o["tools"].items():
                if t.get("error"):
                    lines.append(f"|  | {op}: {tool} failed: {t['error']} |")
    lines += ["", *[f"- {note}" for note in res["notes"]], ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
