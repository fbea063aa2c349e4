"""The dependency lock: make it, say whether it is stale, check that it installs on each Python.

    python scripts/lock.py compile UV   regenerate requirements.lock with uv (keeping existing pins
                                        unless pyproject.toml needs others), then environment.yml
    python scripts/lock.py fresh        exit 1 with a one-line hint when pyproject.toml's dependency
                                        lists changed since the lock was made (stdlib only)
    python scripts/lock.py resolves     for CPython 3.11, 3.12 and 3.13 on this platform: every pinned
                                        package has a wheel whose hash is in the lock (pip --dry-run)

The lock covers the runtime dependencies and the ``dev`` extra, universally (environment markers for
Python versions and platforms). The ``bench`` extra is not locked (``make bench`` installs it on top).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
ENVIRONMENT = ROOT / "environment.yml"
PYTHONS = ["3.11", "3.12", "3.13"]
LOCKED_EXTRAS = ["dev"]
FINGERPRINT = "# pyproject.toml dependency lists (sha256): "
COMPILE = [
    "pip",
    "compile",
    "pyproject.toml",
    "--universal",
    "--generate-hashes",
    "--python-version",
    PYTHONS[0],
    "--extra",
    *LOCKED_EXTRAS,
    "--quiet",
    "-o",
    "requirements.lock",
]
# conda-forge spells a few names differently from PyPI.
CONDA_NAMES = {"jupyter-client": "jupyter_client"}


def normalise(name: str) -> str:
    """PEP 503 name: 'Jupyter_Client' -> 'jupyter-client'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement(text: str) -> tuple[str, str]:
    """'numpy>=2.4' -> ('numpy', '>=2.4')."""
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", text)
    return normalise(match.group(1)), match.group(2).replace(" ", "")


def project() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]


def locked_inputs() -> list[str]:
    """What the lock is made from: requires-python, the runtime list and the locked extras."""
    meta = project()
    extras = [f"[{e}] {r}" for e in LOCKED_EXTRAS for r in meta["optional-dependencies"][e]]
    return [f"python {meta['requires-python']}", *meta["dependencies"], *extras]


def fingerprint() -> str:
    text = json.dumps(sorted(r.replace(" ", "") for r in locked_inputs()))
    return hashlib.sha256(text.encode()).hexdigest()


def pins(text: str | None = None) -> list[tuple[str, str, str]]:
    """(name, version, marker) for every entry of the lock; a name appears once per marker branch."""
    text = LOCK.read_text(encoding="utf-8") if text is None else text
    found = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)[ ]*(?:;[ ]*([^\\\n]*?))?[ ]*\\?$", text, re.M)
    return [(normalise(n), v, m.strip()) for n, v, m in found]


def blocks(text: str | None = None) -> list[str]:
    """The lock's entries as written: a requirement line with its --hash and '# via' lines."""
    text = LOCK.read_text(encoding="utf-8") if text is None else text
    return [b for b in re.split(r"\n(?=[A-Za-z0-9])", text) if re.match(r"[A-Za-z0-9]", b)]


def installed_differences() -> list[str]:
    """Locked packages (whose markers hold here) installed at another version or not at all, e.g.
    'matplotlib 3.11.3 (lock 3.11.2)'. Empty when this environment is the locked one."""
    from importlib import metadata

    from packaging.markers import Marker

    differ = []
    for name, version, marker in pins():
        if marker and not Marker(marker).evaluate():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            differ.append(f"{name} {installed} (lock {version})")
    return differ


def fresh() -> int:
    if not LOCK.exists():
        print("requirements.lock is missing: run `make lock`", file=sys.stderr)
        return 1
    if FINGERPRINT + fingerprint() not in LOCK.read_text(encoding="utf-8"):
        print(
            "requirements.lock was made from other dependency lists than pyproject.toml has now: "
            "run `make lock` (needs PyPI) and commit both",
            file=sys.stderr,
        )
        return 1
    return 0


def environment_yml() -> str:
    """environment.yml for conda users: every runtime and dev dependency pinned to its locked version,
    the bench extra as pyproject.toml states it. Names listed under pip: stay there; new names go there."""
    meta = project()
    previous = ENVIRONMENT.read_text(encoding="utf-8") if ENVIRONMENT.exists() else ""
    pip_only = {normalise(n) for n in re.findall(r"^ {6}- ([A-Za-z0-9_.\-]+)", previous, re.M)}
    conda_before = {normalise(n) for n in re.findall(r"^ {2}- ([A-Za-z0-9_.\-]+)", previous, re.M)}
    locked = {}
    for name, version, _ in pins():
        locked.setdefault(name, set()).add(version)
    conda, pip = [], []
    for text in meta["dependencies"] + meta["optional-dependencies"]["dev"]:
        name, _ = requirement(text)
        versions = sorted(locked.get(name, ()))
        if len(versions) != 1:
            raise SystemExit(f"{name}: {len(versions)} locked versions {versions}; pin it in pyproject.toml")
        in_conda = name in conda_before and name not in pip_only
        (conda if in_conda else pip).append(
            f"{CONDA_NAMES.get(name, name) if in_conda else name}=={versions[0]}"
        )
    bench = [
        f"{requirement(r)[0]}{requirement(r)[1]}  # benchmark peer only"
        for r in meta["optional-dependencies"]["bench"]
    ]
    lines = [
        "# Conda environment for the Leliu needs-survey toolkit (conda-forge). Generated by `make lock`",
        "# from pyproject.toml and requirements.lock (the same versions). Edit only where a package comes",
        "# from (the conda list or pip:); `make lock` keeps that and rewrites the rest.",
        "# Byte-identical figures are promised for the pip install from the lock (`make`); conda builds",
        "# link their own libraries, so figure bytes may differ here.",
        "name: leliu-needs",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python>=3.11,<3.14  # the versions tested (README)",
        "  - pip",
        *[f"  - {c}" for c in conda],
        "  - pip:",
        *[f"      - {p}" for p in pip + bench],
        "      - -e .",
    ]
    return "\n".join(lines) + "\n"


def compile_lock(uv: str) -> int:
    done = subprocess.run([uv, *COMPILE], cwd=ROOT, check=False)
    if done.returncode:
        return done.returncode
    text = LOCK.read_text(encoding="utf-8")
    text = re.sub(r"^" + re.escape(FINGERPRINT) + r".*\n", "", text, flags=re.M)
    header, rest = text.split("\n", 2)[:2], text.split("\n", 2)[2]
    note = (
        "# Regenerate with `make lock` after editing pyproject.toml; `make` installs it with hashes.\n"
        f"{FINGERPRINT}{fingerprint()}\n"
    )
    LOCK.write_text("\n".join(header) + "\n" + note + rest, encoding="utf-8")
    ENVIRONMENT.write_text(environment_yml(), encoding="utf-8")
    print(f"requirements.lock: {len(pins())} pins; environment.yml rewritten")
    return 0


def resolves() -> int:
    """pip evaluates environment markers for the interpreter it runs on, not for --python-version, so the
    markers are evaluated here for each target (packaging) and pip checks the selected pins (--no-deps):
    a wheel for that Python on this platform, with a hash the lock lists."""
    from packaging.markers import Marker

    failed = []
    entries = [b.split("\n") for b in blocks()]
    for python in PYTHONS:
        chosen = set()
        for patch in ("0", "99"):  # a marker may split a minor version (python_full_version < '3.11.5')
            environment = {
                "python_version": python,
                "python_full_version": f"{python}.{patch}",
                "implementation_name": "cpython",
                "platform_python_implementation": "CPython",
                "sys_platform": "linux",
                "os_name": "posix",
                "platform_system": "Linux",
            }
            selected = []
            for b in entries:
                spec, _, marker = b[0].rstrip(" \\").partition(";")
                if not marker.strip() or Marker(marker.strip()).evaluate(environment):
                    hashes = [line for line in b[1:] if line.strip().startswith("--hash")]
                    selected.append("\n".join([spec.strip() + " \\", *hashes]))
            key = "\n".join(selected)
            if key in chosen:
                continue
            chosen.add(key)
            with tempfile.TemporaryDirectory() as tmp:
                requirements = Path(tmp) / "requirements.txt"
                requirements.write_text(key + "\n", encoding="utf-8")
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "install",
                        "--dry-run",
                        "--quiet",
                        "--ignore-installed",
                        "--no-deps",
                        "--only-binary=:all:",
                        "--python-version",
                        f"{python}.{patch}",
                        "--require-hashes",
                        "--report",
                        str(Path(tmp) / "report.json"),
                        "-r",
                        str(requirements),
                    ],
                    check=False,
                    capture_output=True,
                    text=True,
                )
                report = Path(tmp) / "report.json"
                count = len(json.loads(report.read_text())["install"]) if report.exists() else 0
            label = f"CPython {python}.{patch} (linux{'' if patch == '0' else ', any later patch release'})"
            errors = [line for line in done.stderr.splitlines() if not line.startswith("WARNING: Location")]
            if done.returncode:
                failed.append(label)
                print(f"{label}: does NOT resolve\n" + "\n".join(errors[-15:]))
            else:
                print(f"{label}: {count} of {len(selected)} pins have a wheel with a locked hash")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["compile"] and len(argv) == 2:
        return compile_lock(argv[1])
    if argv == ["fresh"]:
        return fresh()
    if argv == ["resolves"]:
        return resolves()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
