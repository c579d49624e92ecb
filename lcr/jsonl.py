"""Reading JSON-lines files with errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from lcr.errors import DataFormatError, LcrError


def read_json_lines(path: str | Path, *, blank_lines: str = "skip",
                    encoding: str = "utf-8") -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, object)`` for each JSON object of a JSON-lines file.

    Args:
        path: the file.
        blank_lines: ``skip`` ignores blank lines anywhere; ``trailing`` allows them only at the
            end of the file (so that record i stands on line i + 1).
        encoding: the text encoding (``utf-8-sig`` also accepts a byte-order mark).

    Raises:
        LcrError: the file cannot be opened.
        DataFormatError: invalid UTF-8, invalid JSON, a line that is not an object, or a blank
            line inside the file with ``blank_lines="trailing"``.
    """
    path = Path(path)
    try:
        handle = open(path, encoding=encoding)
    except OSError as exc:
        raise LcrError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    blank = None
    with handle:
        lineno = 0
        while True:
            lineno += 1
            try:
                raw = handle.readline()
            except UnicodeDecodeError as exc:
                raise DataFormatError(path, f"not valid UTF-8 ({exc.reason}); save the file as UTF-8",
                                      line=lineno) from exc
            if not raw:
                return
            if not raw.strip():
                blank = lineno if blank is None else blank
                continue
            if blank is not None and blank_lines == "trailing":
                raise DataFormatError(path, "blank line inside the file", line=blank)
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataFormatError(path, f"malformed JSON: {exc.msg} (column {exc.colno})",
                                      line=lineno) from exc
            if not isinstance(record, dict):
                raise DataFormatError(path, f"expected a JSON object per line, got {type(record).__name__}",
                                      line=lineno)
            yield lineno, record
