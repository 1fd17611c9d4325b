"""Turn what a person typed (a dataset name or a path) into an imported dataset.

Used by the demo and the CLI: an already imported name; else a local folder or zip; else a
GroupLens dataset already downloaded to ``$PREFSHIFT_DATA_DIR/datasets/``; else a download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import select

from prefshift_common.db import sync_connection
from prefshift_datasets.config import DatasetSettings
from prefshift_datasets.download import GROUPLENS_DATASETS, DownloadProgress, download_dataset
from prefshift_datasets.errors import DatasetError, DatasetNotFoundError
from prefshift_datasets.importer import ImportResult, ProgressCallback, import_dataset
from prefshift_datasets.models import Dataset


@dataclass(frozen=True)
class ResolvedDataset:
    """An imported dataset and how it was found."""

    name: str
    dataset_id: int
    how: Literal["imported", "local", "cached", "downloaded"]


def _imported_id(database_url: str, name: str) -> int | None:
    with sync_connection(database_url) as connection:
        return connection.execute(
            select(Dataset.id).where(Dataset.name == name)
        ).scalar_one_or_none()


def resolve_dataset(
    name_or_path: str,
    *,
    settings: DatasetSettings | None = None,
    progress: ProgressCallback | None = None,
    download_progress: DownloadProgress | None = None,
) -> ResolvedDataset:
    """The imported dataset ``name_or_path`` refers to, importing or downloading it if needed.

    The database must be migrated. Offline, an unknown name raises a :class:`DatasetError` that
    says to pass a local path.
    """
    settings = settings or DatasetSettings()
    database_url = settings.resolved_database_url
    dataset_id = _imported_id(database_url, name_or_path)
    if dataset_id is not None:
        return ResolvedDataset(name_or_path, dataset_id, "imported")
    path = Path(name_or_path).expanduser()
    if path.exists():
        result = import_dataset(database_url, path, progress=progress)
        return _resolved(result, "local")
    if name_or_path in GROUPLENS_DATASETS:
        for candidate in (
            settings.datasets_dir / f"{name_or_path}.zip",
            settings.datasets_dir / name_or_path,
        ):
            if candidate.exists():
                result = import_dataset(database_url, candidate, progress=progress)
                return _resolved(result, "cached")
        download = download_dataset(
            name_or_path,
            settings.datasets_dir,
            base_url=settings.datasets_download_url,
            timeout=settings.datasets_download_timeout,
            progress=download_progress,
        )
        result = import_dataset(database_url, download.path, progress=progress)
        return _resolved(result, "downloaded")
    if any(separator in name_or_path for separator in ("/", "\\")) or name_or_path.endswith(".zip"):
        raise DatasetError(f"{name_or_path}: no such file or folder")
    raise DatasetNotFoundError(
        f"{name_or_path!r} is not an imported dataset, a local path, or a GroupLens dataset "
        f"({', '.join(GROUPLENS_DATASETS)})"
    )


def _resolved(
    result: ImportResult, how: Literal["local", "cached", "downloaded"]
) -> ResolvedDataset:
    return ResolvedDataset(result.name, result.dataset_id, how)
