"""Skip a stage whose inputs have not changed since it last wrote its outputs.

Owns: which files each stage reads (:func:`stage_inputs`), the record a finished stage leaves in
``<out>/.stage_cache/<stage>.sha256`` (sha256 of every input and every output file, and the stage's
seconds) and the test that the record still holds (:func:`is_current`). A stage is current when every
input (the files it reads, the ``analysis/`` code and settings, the library versions, the language and
figure folder) hashes as recorded and every output it wrote is still there with the recorded hash. The
inputs are the files the stage actually reads, not whole folders, so editing only the cleaning decisions
reruns the clean stage, and the later stages only if the clean tables they read changed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
from pathlib import Path

from analysis.ingest.files import sha256
from analysis.weights import COMPOSITION_FILE

ROOT = Path(__file__).resolve().parent.parent
CACHE = ".stage_cache"
LIBRARIES = ("numpy", "pandas", "pyarrow", "scipy", "matplotlib", "openpyxl", "python-calamine", "pyyaml")
CLEAN_READ = [
    "clean/households.parquet",
    "clean/persons.parquet",
    "clean/provenance.json",
]  # figure footnotes
STAGE_READS = {  # files under the output folder each stage reads (docs/contracts.md)
    "clean": [],
    "weights": CLEAN_READ,
    "demand": CLEAN_READ
    + [
        f"weights/{name}"
        for name in (
            "households.parquet",
            "persons.parquet",
            "person_replicates.parquet",
            "household_replicates.parquet",
            "diagnostics.csv",
        )
    ],
    "staffing": CLEAN_READ + ["demand/drivers.csv", "demand/drivers_replicates.parquet"],
    "brief": CLEAN_READ
    + [
        "clean/deletion_log.csv",
        "demand/results.csv",
        "staffing/allocation.csv",
        "staffing/replicate_allocations.csv",
        "staffing/sensitivity.csv",
    ],
}


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [path]


def code_fingerprint() -> str:
    """sha256 over the ``analysis/`` package (code, YAML settings, label tables), the Python version and the
    versions of the libraries whose output lands in the files."""
    digest = hashlib.sha256(sys.version.encode())
    for name in LIBRARIES:
        try:
            digest.update(f"{name} {importlib.metadata.version(name)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{name} absent".encode())
    package = ROOT / "analysis"
    for path in _files(package):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def stage_inputs(stage: str, out: Path, inputs, settings: dict[str, str], code: str) -> dict[str, str]:
    """sha256 by name of everything ``stage`` depends on: its files under ``out``, the run's input files
    (``inputs``: :class:`analysis.pipeline.Inputs`), ``settings`` (language, figure folder) and ``code``."""
    found = {"code": code, **{f"setting {k}": v for k, v in sorted(settings.items())}}
    outside = []
    if stage == "clean":  # the export with its sibling files (roster, media), the form, decisions, settings
        from analysis.clean.settings import DEFAULT_SETTINGS

        outside = [
            inputs.data if inputs.data.is_dir() else inputs.data.parent,
            inputs.form,
            inputs.decisions,
            inputs.settings or DEFAULT_SETTINGS,
        ]
    elif stage == "weights":
        outside = [
            inputs.sample_design,
            inputs.frame / "population_frame.csv",
            inputs.frame / COMPOSITION_FILE,
        ]
    elif stage == "demand":  # the form's labels; the frame's 村居 covariates for the model estimates
        outside = [inputs.form, inputs.frame / "population_frame.csv"]
    elif stage == "brief":
        outside = [inputs.form]
    for path in outside:
        if path is not None and Path(path).exists():
            for file in _files(Path(path)):
                found[f"input {file}"] = sha256(file)
        elif path is not None:
            found[f"input {path}"] = "missing"
    for name in STAGE_READS[stage]:
        path = out / name
        found[f"reads {name}"] = sha256(path) if path.exists() else "missing"
    return found


def _record_path(out: Path, stage: str) -> Path:
    return out / CACHE / f"{stage}.sha256"


def read_record(out: Path, stage: str) -> tuple[dict[str, str], dict[str, str], float | None, int | None]:
    """The inputs, outputs, seconds and households recorded by the stage's last run (empty / None when
    there is none)."""
    path = _record_path(out, stage)
    inputs, outputs, seconds, rows = {}, {}, None, None
    if not path.exists():
        return inputs, outputs, seconds, rows
    for line in path.read_text(encoding="utf-8").splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "seconds":
            seconds = float(rest)
        elif kind == "rows":
            rows = int(rest) if rest else None
        else:
            name, _, digest = rest.rpartition("\t")
            (inputs if kind == "in" else outputs)[name] = digest
    return inputs, outputs, seconds, rows


def is_current(out: Path, stage: str, inputs: dict[str, str]) -> bool:
    """Whether ``stage``'s record matches ``inputs`` and every recorded output is unchanged."""
    recorded, outputs, _, _ = read_record(out, stage)
    if not outputs or recorded != inputs:
        return False
    return all(Path(name).is_file() and sha256(Path(name)) == digest for name, digest in outputs.items())


def stage_outputs(out: Path, stage: str, extra: list[Path] = ()) -> list[Path]:
    """Files the stage wrote: its folder under ``out``, and ``extra`` (figures, DATA_SOURCE.txt)."""
    folder = out / stage
    return (_files(folder) if folder.is_dir() else []) + [Path(p) for p in extra if Path(p).is_file()]


def write_record(
    out: Path,
    stage: str,
    inputs: dict[str, str],
    outputs: list[Path],
    seconds: float,
    rows: int | None = None,
) -> None:
    """Record what the stage read and wrote (written last, so a stage stopped midway has no record)."""
    path = _record_path(out, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"in\t{name}\t{digest}" for name, digest in inputs.items()]
    lines += [f"out\t{p.resolve()}\t{sha256(p)}" for p in outputs]
    lines += [f"seconds\t{seconds:.3f}", f"rows\t{rows or ''}"]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


def forget(out: Path, stage: str) -> None:
    """Drop the stage's record (before it reruns, so a failure midway cannot leave a stale one)."""
    _record_path(out, stage).unlink(missing_ok=True)
