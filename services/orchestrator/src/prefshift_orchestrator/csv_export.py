"""CSV exports that a spreadsheet opens as data, never as formulas (OWASP, "CSV injection")."""

from __future__ import annotations

import csv
from typing import Any

import pandas as pd

#: A cell starting with one of these is read as a formula by Excel, LibreOffice or Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: Any) -> Any:
    """A text cell that would start a formula, prefixed with ``'``; other cells as they are."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV with every text cell neutralised; numeric columns stay numbers."""
    safe = frame.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise)
    safe.columns = [neutralise(str(column)) for column in safe.columns]
    # Text quoted (a bare carriage return would otherwise end the row); numbers bare.
    return str(safe.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC))
