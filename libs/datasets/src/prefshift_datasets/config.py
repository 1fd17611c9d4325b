"""Settings of dataset downloads (the rest comes from :class:`CommonSettings`)."""

from __future__ import annotations

from pydantic import Field

from prefshift_common.settings import CommonSettings

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"


class DatasetSettings(CommonSettings):
    """``PREFSHIFT_DATASETS_DOWNLOAD_URL``: where ``<name>.zip`` and ``<name>.zip.md5`` are."""

    datasets_download_url: str = Field(
        default=GROUPLENS_URL, description="Base URL of the MovieLens zips (GroupLens)."
    )
    datasets_download_timeout: float = Field(default=30.0, gt=0, le=600)
