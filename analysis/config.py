"""Reading the project's YAML configuration files (needs, assumptions, simulation, labels)."""

from __future__ import annotations

from pathlib import Path

import yaml

from analysis.errors import ConfigError


def read_yaml(path: str | Path, what: str):
    """Parse a YAML file, raising :class:`ConfigError` naming the file (and line) when it cannot be read.

    ``what`` says what the file holds, e.g. "need definitions", for the message.
    """
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found", file=str(path)) from None
    except OSError as error:
        raise ConfigError(f"cannot read {what}: {error.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} file is not UTF-8 text", file=str(path)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise ConfigError(f"{what} file is not valid YAML ({getattr(error, 'problem', None) or 'syntax error'})",
                          file=str(path), row=None if mark is None else mark.line + 1,
                          hint="check indentation and quoting on that line") from None
