"""The re-rating designs' rows from an experiment's stored runs. The measures themselves are
:mod:`prefshift_common.rerating` (one implementation, shared with ``prefshift validity``),
re-exported here for the report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from prefshift_common.rerating import RERATING_COLUMNS as RERATING_COLUMNS
from prefshift_common.rerating import RerateReport as RerateReport
from prefshift_common.rerating import rerate_report as rerate_report
from prefshift_common.rerating import summary_table as summary_table


def rerating_rows(
    user_id: int,
    ratings: Sequence[tuple[str, int, str, int, float, float | None, str | None]],
    real: dict[int, float],
    *,
    arm: str,
) -> pd.DataFrame:
    """One run's re-ratings (``RERATING_COLUMNS``) from its ratings as
    ``(arm, page, phase, tmdb_id, rating, shown, condition)``: session 1 is the baseline, session
    p + 1 the test ratings of ``arm`` on page p."""
    first = {
        tmdb_id: rating
        for name, page, phase, tmdb_id, rating, _, _ in ratings
        if name == "baseline" and page == 0 and phase == "test"
    }
    rows = [
        (
            user_id,
            tmdb_id,
            page + 1,
            condition or "none",
            np.nan if shown is None else shown,
            real.get(tmdb_id, np.nan),
            first[tmdb_id],
            rating,
        )
        for name, page, phase, tmdb_id, rating, shown, condition in ratings
        if name == arm and phase == "test" and page >= 1 and tmdb_id in first
    ]
    return pd.DataFrame(rows, columns=list(RERATING_COLUMNS))
