"""Download MovieLens zips from GroupLens, with a progress callback and an MD5 check.

GroupLens publishes ``<name>.zip.md5`` beside each zip; when it cannot be fetched the download
still succeeds and says that the checksum was not checked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import structlog

from prefshift_datasets.errors import DatasetError

log = structlog.get_logger()

#: The GroupLens datasets ``prefshift data download`` knows by name.
GROUPLENS_DATASETS = ("ml-latest-small", "ml-32m")
_MD5 = re.compile(r"\b([0-9a-fA-F]{32})\b")
_BLOCK = 1 << 20

DownloadProgress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


class DatasetDownloadError(DatasetError):
    """The dataset could not be downloaded (offline, HTTP error, checksum mismatch)."""


@dataclass(frozen=True)
class Download:
    """A downloaded (or already present) zip and what is known of its checksum."""

    path: Path
    md5: str
    checksum: str  # "verified", "unavailable" (no .md5 published/reachable) or "cached"
    downloaded: bool


def download_dataset(
    name: str,
    destination: Path,
    *,
    base_url: str,
    timeout: float = 30.0,
    progress: DownloadProgress | None = None,
) -> Download:
    """Fetch ``<base_url>/<name>.zip`` into ``destination`` (kept when already there and valid)."""
    if name not in GROUPLENS_DATASETS:
        raise DatasetDownloadError(
            f"unknown dataset {name!r}: known are {', '.join(GROUPLENS_DATASETS)}"
        )
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / f"{name}.zip"
    url = f"{base_url.rstrip('/')}/{name}.zip"
    with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=True) as client:
        expected = _published_md5(client, url)
        if target.exists():
            md5 = _md5_of(target)
            if expected is None or md5 == expected:
                log.info("dataset zip already present", path=str(target))
                return Download(target, md5, "cached", downloaded=False)
            log.warning(
                "dataset zip present but its checksum differs; downloading", path=str(target)
            )
        partial = target.with_suffix(".zip.part")
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise DatasetDownloadError(
                        f"{url}: HTTP {response.status_code} {response.reason_phrase}"
                    )
                total = (
                    int(response.headers["content-length"])
                    if "content-length" in response.headers
                    else None
                )
                done = 0
                with partial.open("wb") as file:
                    for block in response.iter_bytes(_BLOCK):
                        file.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, total)
        except httpx.TransportError as error:
            partial.unlink(missing_ok=True)
            raise _offline(url, error) from error
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    md5 = digest.hexdigest()
    if expected is not None and md5 != expected:
        partial.unlink(missing_ok=True)
        raise DatasetDownloadError(f"{url}: MD5 {md5} does not match the published {expected}")
    partial.replace(target)
    return Download(target, md5, "verified" if expected else "unavailable", downloaded=True)


def _offline(url: str, error: httpx.TransportError) -> DatasetDownloadError:
    host = urlsplit(url).netloc
    return DatasetDownloadError(
        f"cannot reach {host} ({type(error).__name__}): offline? "
        "pass a local folder or zip of the dataset instead"
    )


def _published_md5(client: httpx.Client, url: str) -> str | None:
    """The MD5 GroupLens publishes at ``<zip>.md5``; None when it cannot be had (but online)."""
    try:
        response = client.get(f"{url}.md5")
    except httpx.TransportError as error:
        raise _offline(url, error) from error
    if response.status_code != 200:
        log.warning("no checksum published", url=f"{url}.md5", status=response.status_code)
        return None
    match = _MD5.search(response.text)
    return match.group(1).lower() if match else None


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while block := file.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
