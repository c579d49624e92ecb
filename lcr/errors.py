"""User-facing errors.

Every error that a user can cause (bad input file, missing dataset, bad option) is raised as
an :class:`LcrError`; the CLI prints its message and exits with status 2, without a traceback.
"""

from __future__ import annotations


class LcrError(Exception):
    """An error caused by input or configuration, with a message meant for the user."""


class DataFormatError(LcrError):
    """Malformed input data, located by file, line and field.

    Args:
        path: the file that holds the bad record.
        message: what is wrong.
        line: 1-based line number, when the format is line-oriented.
        field: the field (JSON key, column, SGML element) at fault.
    """

    def __init__(self, path, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")
