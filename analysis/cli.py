"""Command line: ``python -m analysis {run,simulate,clean,analyse,readme,instrument} ...``.

Owns: parsing arguments, running the stages (:mod:`analysis.pipeline`) in this process (the default,
skipping stages whose inputs did not change) or, with ``--notebooks``, through their notebooks with
papermill, and turning errors into one line. User-caused problems
(:class:`analysis.errors.AnalysisError`) are printed as one line on stderr naming the stage and exit with
status 2; a failing notebook cell exits with status 1 and names the notebook and the cell.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from analysis.errors import AnalysisError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "survey" / "raw" / "kobo" / "leliu_needs_survey.xlsx"
DEFAULT_FORM = ROOT / "survey" / "instrument" / "leliu_needs_survey.xlsx"
NOTEBOOKS = ROOT / "notebooks"
USER_ERRORS = {cls.__name__ for cls in (AnalysisError, *AnalysisError.__subclasses__())}


def notebook_parameters(inputs, out: Path, figures: Path, lang: str) -> dict[str, str | None]:
    """Parameters injected into every notebook (each notebook declares the ones it uses): the run's inputs
    (:class:`analysis.pipeline.Inputs`), output and figure folders, label language."""
    return {
        "data": str(inputs.data),
        "form": str(inputs.form),
        "decisions": None if inputs.decisions is None else str(inputs.decisions),
        "settings": None if inputs.settings is None else str(inputs.settings),
        "frame_dir": str(inputs.frame),
        "design": str(inputs.sample_design),
        "out_dir": str(out),
        "fig_dir": str(figures),
        "lang": lang,
    }


def strip_run_metadata(notebook: Path) -> None:
    """Remove papermill's timestamps and durations so a re-executed notebook diffs only where outputs do."""
    import json

    content = json.loads(notebook.read_text(encoding="utf-8"))
    content.get("metadata", {}).pop("papermill", None)
    for cell in content.get("cells", []):
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    notebook.write_text(json.dumps(content, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def declared_parameters(notebook: Path, parameters: dict[str, str]) -> dict[str, str]:
    """The subset of ``parameters`` that the notebook's tagged parameters cell declares."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    return {name: value for name, value in parameters.items() if name in declared}


def local_kernel_manager():
    """A Jupyter kernel manager that talks to its kernel over local IPC sockets instead of TCP.

    The kernel only ever runs on this machine; IPC keeps it off the network and stops ipykernel's
    "running over TCP without encryption" warning from cluttering every notebook's progress line.
    Each kernel gets its own socket paths: jupyter_client's default ("kernel-ipc-1" … "-5" in the
    working folder) is the same for two runs started at once from the same folder, and then each
    kernel answers the other's client, which waits until it times out.
    """
    import tempfile
    import uuid

    from jupyter_client.manager import KernelManager
    from traitlets import default

    class LocalKernelManager(KernelManager):
        @default("transport")
        def _default_transport(self):
            return "ipc"

        @default("ip")
        def _default_ip(self):
            return str(Path(tempfile.gettempdir()) / f"leliu-kernel-{uuid.uuid4().hex}")

    return LocalKernelManager


# Not part of the main job on one export: 06 compares two survey waves (`make evaluate`; refreshed in place).
SEPARATE_NOTEBOOKS = ("06_annual_evaluation",)
# a kernel on a busy machine (CI runs two test workers on two cores) can take more than papermill's default
# 60 s to answer its first message; waiting longer changes no output
KERNEL_START_SECONDS = 300


def run_notebooks(
    notebook_dir: Path,
    out: Path,
    parameters: dict[str, str],
    in_place: bool = False,
    only: tuple[str, ...] = (),
) -> int:
    """Execute every notebook in ``notebook_dir`` (or those named ``only``, without ``.ipynb``) in name order
    with papermill; ``SEPARATE_NOTEBOOKS`` only when in place or named.

    Executed copies go to ``out/notebooks`` and the committed notebooks are not touched, unless
    ``in_place`` (used by ``make notebooks`` to refresh the committed outputs with the notebooks' own
    default parameters). Returns 0 when every notebook ran, 1 at the first failing cell (named on stderr),
    or 2 when that cell raised an AnalysisError (the user's input: its one-line message is printed).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebooks = [
        n
        for n in sorted(notebook_dir.glob("[0-9]*.ipynb"))
        if (n.stem in only if only else in_place or n.stem not in SEPARATE_NOTEBOOKS)
    ]
    executed_dir = notebook_dir if in_place else out / "notebooks"
    executed_dir.mkdir(parents=True, exist_ok=True)
    if not notebooks:
        print(f"no notebooks in {notebook_dir}; nothing to run")
        return 0
    for number, notebook in enumerate(notebooks, start=1):
        started = time.perf_counter()
        print(f"[{number}/{len(notebooks)}] {notebook.name} ...", end=" ", flush=True)
        try:
            papermill.execute_notebook(
                str(notebook),
                str(executed_dir / notebook.name),
                parameters=None if in_place else declared_parameters(notebook, parameters),
                cwd=str(notebook_dir),
                progress_bar=False,
                start_timeout=KERNEL_START_SECONDS,
                kernel_name="python3",
                kernel_manager_class=local_kernel_manager(),
            )
        except PapermillExecutionError as error:
            print("failed")
            if error.ename in USER_ERRORS:  # the user's input, not the notebook: one line, no failed copy
                if not in_place:
                    (executed_dir / notebook.name).unlink(missing_ok=True)
                print(f"error: {notebook.name}: {error.evalue}", file=sys.stderr)
                return 2
            print(
                f"{notebook.name}: cell {error.cell_index} (execution count {error.exec_count}) raised "
                f"{error.ename}: {error.evalue}\n  executed copy: {executed_dir / notebook.name}",
                file=sys.stderr,
            )
            return 1
        if in_place:
            strip_run_metadata(notebook)
        print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def raw_export_changes(data: Path, out: Path) -> list[str]:
    """Name the raw files whose checksum differs from the one the last run recorded in ``out``.

    The clean stage records every raw file's sha256 in ``out/clean/provenance.json``; a raw export
    should never change after collection, so a difference is reported before the next run.
    """
    import json

    from analysis.ingest import sha256

    previous = out / "clean" / "provenance.json"
    if not previous.exists():
        return []
    recorded = json.loads(previous.read_text(encoding="utf-8")).get("raw_sha256", {})
    folder = data if data.is_dir() else data.parent
    return sorted(
        name
        for name, digest in recorded.items()
        if (folder / name).is_file() and sha256(folder / name) != digest
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from analysis import pipeline

    inputs = pipeline.Inputs(
        data=Path(args.data).resolve(),
        form=Path(args.form).resolve(),
        decisions=Path(args.decisions).resolve() if args.decisions else None,
        settings=Path(args.settings).resolve() if args.settings else None,
        frame=Path(args.frame).resolve(),
        design=Path(args.design).resolve() if args.design else None,
    )
    for path, option in (
        (inputs.data, "--data"),
        (inputs.form, "--form"),
        (inputs.decisions, "--decisions"),
        (inputs.settings, "--settings"),
        (inputs.frame, "--frame"),
        (inputs.design, "--design"),
    ):
        if path is not None and not path.exists():
            raise AnalysisError(
                f"{option} names a file that does not exist",
                file=str(path),
                hint="pass --data PATH to your export (Kobo .xlsx/.csv, 问卷星 .csv/.xlsx or SPSS .sav)"
                if option == "--data"
                else "see python -m analysis run --help",
            )
    out, figures = Path(args.out).resolve(), Path(args.figures).resolve()
    stages = (args.stage,) if args.stage else pipeline.STAGES
    if "clean" in stages:
        for name in raw_export_changes(inputs.data, out):
            print(
                f"warning: raw file {name} changed since the last run (its sha256 differs from "
                f"{out / 'clean' / 'provenance.json'}); results will be recomputed from the new file"
            )
    if args.notebooks is None and not args.in_place:  # the main job: stage functions in this process
        pipeline.run_stages(
            out, inputs, args.lang, figures, stages, _progress, cache=not args.force, background_figures=True
        )
        return 0
    only = tuple(pipeline.NOTEBOOKS[s] for s in stages) if args.stage else ()
    return run_notebooks(
        Path(args.notebooks or NOTEBOOKS).resolve(),
        out,
        notebook_parameters(inputs, out, figures, args.lang),
        in_place=args.in_place,
        only=only,
    )


def _progress(line: str) -> None:
    """Progress of a headless run, one line per stage."""
    print(line, flush=True)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from analysis.simulate import write_survey
    from analysis.simulate.waves import write_wave_survey

    if args.wave is None or args.wave == 2012:
        paths = write_survey(seed=args.seed, out_dir=Path(args.out), n_households=args.households)
    else:
        paths = write_wave_survey(
            args.seed, args.wave, Path(args.out), fresh_psus=args.fresh_psus, n_households=args.households
        )
    for name, path in sorted(paths.items()):
        print(f"{name}: {path}")
    return 0


def _cmd_clean(args: argparse.Namespace) -> int:
    from analysis.clean import clean_survey

    result = clean_survey(
        Path(args.form),
        Path(args.data),
        Path(args.out),
        decisions=Path(args.decisions) if args.decisions else None,
        settings=Path(args.settings) if args.settings else None,
        apply_log=Path(args.apply_log) if args.apply_log else None,
    )
    print(result)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from analysis.evaluate import run_evaluation, summary

    evaluation = run_evaluation(
        args.waves, args.out, fig_dir=args.figures, years=args.years, psus=args.psus, form=args.form
    )
    print(summary(evaluation, args.lang))
    print(
        f"written: {Path(args.out) / 'evaluation.csv'}, {Path(args.out) / 'summary.json'}, "
        f"{Path(args.figures) / 'annual_change.png'}"
    )
    return 0


def _cmd_analyse(args: argparse.Namespace) -> int:
    from analysis.analyse import analyse_files

    def split(text):
        return [part.strip() for part in text.split(",")] if text else None

    results = analyse_files(
        args.data,
        args.loa,
        args.out,
        form=args.form,
        weights=args.weights,
        strata=args.strata,
        ids=split(args.ids),
        fpc=split(args.fpc),
    )
    print(f"{len(results)} results from {args.loa} written to {args.out}")
    return 0


def _cmd_readme(args: argparse.Namespace) -> int:
    from analysis import readme

    changed = readme.update(Path(args.out), Path(args.readme), check=args.check)
    for name, (old, new) in sorted(changed.items()):
        print(f"{name}: {old} -> {new}")
    if args.check:
        print(
            f"{len(changed)} README values differ from {args.out}"
            if changed
            else "README values match the outputs"
        )
        return 1 if changed else 0
    print(f"{len(changed)} README values updated")
    return 0


def _cmd_instrument(args: argparse.Namespace) -> int:
    from analysis.instrument import build_xlsx, validate_form

    source = Path(args.source)
    target = Path(args.xlsx)
    build_xlsx(source, target)
    validate_form(target)
    print(f"built and validated {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Leliu (勒流) needs assessment: clean a survey export, estimate demand, size the teams.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run every stage in order in this process, or through the notebooks with "
        "--notebooks (the main job behind `make report`)",
    )
    run.add_argument(
        "--data", default=str(DEFAULT_DATA), help="raw survey export (default: the bundled simulated one)"
    )
    run.add_argument("--form", default=str(DEFAULT_FORM), help="the XLSForm the export was collected with")
    run.add_argument(
        "--decisions", default=None, help="an edited cleaning log whose decisions win over the defaults"
    )
    run.add_argument("--settings", default=None, help="cleaning settings YAML (default survey/cleaning.yaml)")
    run.add_argument(
        "--frame",
        default=str(ROOT / "survey" / "frame"),
        help="folder of the population frame (population_frame.csv, cunju.csv)",
    )
    run.add_argument(
        "--design", default=None, help="sample design CSV (default: sample_design.csv in --frame)"
    )
    run.add_argument(
        "--no-notebooks",
        action="store_true",
        help="run the stage functions in this process (the default; same tables as the notebook run)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="rerun every stage even when its inputs are unchanged since the last run into --out",
    )
    run.add_argument(
        "--stage",
        choices=["clean", "weights", "demand", "staffing", "brief"],
        default=None,
        help="rerun one stage from the files the earlier stages left in --out",
    )
    run.add_argument("--lang", choices=["zh", "en"], default="zh", help="label language of figures and brief")
    run.add_argument(
        "--out", default=str(ROOT / "build"), help="folder for tables, logs and executed notebooks"
    )
    run.add_argument("--figures", default=str(ROOT / "figures"), help="folder for figures")
    run.add_argument(
        "--notebooks",
        nargs="?",
        const=str(NOTEBOOKS),
        default=None,
        help="run the stages through their notebooks with papermill, from this folder (default "
        "notebooks/), executed copies in <out>/notebooks",
    )
    run.add_argument(
        "--in-place",
        action="store_true",
        help="re-execute the committed notebooks in place with their default parameters",
    )
    run.set_defaults(func=_cmd_run)

    simulate = commands.add_parser("simulate", help="write a simulated survey export with its planted truth")
    simulate.add_argument("--seed", type=int, required=True)
    simulate.add_argument("--out", required=True, help="output folder")
    simulate.add_argument(
        "--households", type=int, default=None, help="responding households (default: config)"
    )
    simulate.add_argument(
        "--wave",
        type=int,
        default=None,
        help="a later wave, e.g. 2013: the same population a year on (default: the 2012 wave)",
    )
    simulate.add_argument(
        "--fresh-psus",
        action="store_true",
        help="with --wave: draw new residential groups instead of revisiting the 2012 ones",
    )
    simulate.set_defaults(func=_cmd_simulate)

    clean = commands.add_parser("clean", help="run the cleaning stage alone: clean tables and both logs")
    clean.add_argument("--form", default=str(DEFAULT_FORM))
    clean.add_argument("--data", required=True)
    clean.add_argument(
        "--decisions", default=None, help="an edited cleaning log (CSV or XLSX) whose decisions win"
    )
    clean.add_argument(
        "--apply-log",
        default=None,
        help="apply a reviewed cleaning log alone, none of the checks (cleaningtools create_clean_data)",
    )
    clean.add_argument(
        "--settings", default=None, help="cleaning settings YAML (default survey/cleaning.yaml)"
    )
    clean.add_argument("--out", required=True)
    clean.set_defaults(func=_cmd_clean)

    evaluate = commands.add_parser(
        "evaluate",
        help="compare two survey waves: reach, unmet need, stated demand, "
        "awareness of the centre, and their change",
    )
    evaluate.add_argument(
        "--waves",
        nargs=2,
        required=True,
        metavar=("FIRST", "SECOND"),
        help="two survey folders, each as survey/: raw/ (the export) and frame/ (its own year's "
        "population_frame.csv and sample_design.csv)",
    )
    evaluate.add_argument(
        "--out", required=True, help="folder for evaluation.csv, summary.json and each wave's files"
    )
    evaluate.add_argument(
        "--years", nargs=2, type=int, default=None, help="the waves' years (default: interview dates)"
    )
    evaluate.add_argument(
        "--psus",
        choices=["revisited", "fresh"],
        default=None,
        help="did the second wave revisit the first's residential groups (default: from the "
        "sample designs: revisited when one wave's groups all lie among the other's)",
    )
    evaluate.add_argument(
        "--form", default=None, help="XLSForm of both waves (default: each folder's instrument/)"
    )
    evaluate.add_argument(
        "--figures", default=str(ROOT / "figures"), help="folder for the figure annual_change"
    )
    evaluate.add_argument(
        "--lang", choices=["zh", "en"], default="zh", help="language of the printed summary"
    )
    evaluate.set_defaults(func=_cmd_evaluate)

    analyse = commands.add_parser(
        "analyse", help="run a list of analyses (analysistools' loa) on a clean table"
    )
    analyse.add_argument("--data", required=True, help="clean table (CSV, Parquet or .xlsx)")
    analyse.add_argument(
        "--loa", required=True, help="list of analyses (CSV or .xlsx, analysistools' columns)"
    )
    analyse.add_argument("--out", required=True, help="results CSV to write")
    analyse.add_argument(
        "--form", default=None, help="XLSForm (.xlsx or folder of sheet CSVs) for select_multiple options"
    )
    analyse.add_argument("--weights", default=None, help="weight column (default: equal weights)")
    analyse.add_argument("--strata", default=None, help="stratum column")
    analyse.add_argument("--ids", default=None, help="cluster column(s), outermost first, comma-separated")
    analyse.add_argument("--fpc", default=None, help="fpc column(s), one per stage, comma-separated")
    analyse.set_defaults(func=_cmd_analyse)

    readme = commands.add_parser(
        "readme", help="fill README.md's marked numbers from the outputs of a bundled run"
    )
    readme.add_argument(
        "--out", default=str(ROOT / "build"), help="output folder of a run of the bundled survey"
    )
    readme.add_argument("--readme", default=str(ROOT / "README.md"))
    readme.add_argument("--check", action="store_true", help="only report values that differ (exit 1 if any)")
    readme.set_defaults(func=_cmd_readme)

    instrument = commands.add_parser(
        "instrument", help="build the XLSForm .xlsx from its CSV source and validate it"
    )
    instrument.add_argument("action", choices=["build"])
    instrument.add_argument("--source", default=str(ROOT / "survey" / "instrument"))
    instrument.add_argument("--xlsx", default=str(DEFAULT_FORM))
    instrument.set_defaults(func=_cmd_instrument)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AnalysisError as error:
        stage = getattr(error, "stage", None)
        print(f"error: {stage + ' stage: ' if stage else ''}{error}", file=sys.stderr)
        return 2
