"""Read a raw survey export into household and person tables keyed to the XLSForm, dropping personal data.

One reader per format (docs/sources.md §5.4–5.5):

- :mod:`~analysis.ingest.kobo` — KoboToolbox / ODK ``.xlsx`` (first sheet submissions, one sheet per repeat
  group, linked by ``_index`` / ``_parent_index`` or ``_submission__uuid``) or CSVs (``<form>.csv`` plus
  ``<repeat>.csv`` in the same folder);
- :mod:`~analysis.ingest.wjx` — 问卷星 (Wenjuanxing) text or code files, CSV or xlsx;
- :mod:`~analysis.ingest.spss` — SPSS ``.sav`` with value labels (and :func:`write_sav`).

Shared pieces: :mod:`~analysis.ingest.files` (encodings, workbooks), :mod:`~analysis.ingest.headers` (export
headers to form fields; group separators ``/``, ``.`` or ``-``), :mod:`~analysis.ingest.values` (typed
answers; select_multiple as summary, 0/1 columns or both, leaving as the summary column plus
``<name>.<option>`` 0/1 columns), :mod:`~analysis.ingest.privacy` (redaction and pseudonymous keys) and
:mod:`~analysis.ingest.export` (:func:`read_export`, which puts them together, and provenance).

Personal data never leaves this package: fields the form marks ``pii = yes`` are dropped, and mobile
numbers (11 digits starting 13–19), 18-character ID numbers and the submission's own personal answers
(names, address) found in free text are replaced by :data:`REDACTED`. Keys are pseudonymous: a keyed
BLAKE2 hash of the submission uuid (``household_id``) and ``<household_id>-<member number>``
(``person_id``). Raw files are only read.
"""

from analysis.ingest.export import CONVERSION_COLUMNS, RawExport, detect_format, read_export
from analysis.ingest.files import sha256
from analysis.ingest.privacy import REDACTED
from analysis.ingest.spss import write_sav
from analysis.ingest.wjx import wjx_column

__all__ = [
    "CONVERSION_COLUMNS",
    "REDACTED",
    "RawExport",
    "detect_format",
    "read_export",
    "sha256",
    "wjx_column",
    "write_sav",
]
