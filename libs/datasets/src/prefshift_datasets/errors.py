"""Errors of dataset import and lookup. Plain exceptions: the CLI prints them, services map them."""

from __future__ import annotations


class DatasetError(Exception):
    """Base of every dataset error; its message is meant for the person running the import."""


class DatasetNotFoundError(DatasetError, LookupError):
    """No imported dataset has this name (or id)."""


class DatasetConflictError(DatasetError):
    """A dataset of this name exists with different content."""


class DatasetLayoutError(DatasetError):
    """The path is not a dataset this project can read (no ratings.csv, no per-user files, …)."""


class MalformedFileError(DatasetError):
    """A file of the dataset cannot be parsed; names the file and, when known, the line."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}, line {line}" if line is not None else file
        super().__init__(f"{where}: {reason}")
