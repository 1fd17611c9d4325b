"""Where a dataset's files are: a folder or a zip, MovieLens layout and/or the seed study's files.

A *source* answers "which files does this dataset have" and opens them as binary streams, the
same way for a folder and for a zip (whose files may sit in a subfolder, as in ``ml-32m.zip``).
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from prefshift_datasets.errors import DatasetLayoutError

PER_USER_FILE = re.compile(r"^movies_enriched-user(\d+)\.csv$")
MOVIELENS_FILES = ("ratings.csv", "movies.csv", "links.csv")
_HASH_BLOCK = 1 << 20
#: A zip member that expands more than this many times (and past a few MB) is refused: CSV of
#: ratings compresses 4–6×, a zip bomb thousands of times.
MAX_COMPRESSION_RATIO = 100
_RATIO_CHECKED_FROM_BYTES = 16 << 20


@dataclass(frozen=True)
class PerUserFile:
    """One of the seed study's ``movies_enriched-user<ID>.csv`` files."""

    relative_path: str
    user_id: int


@dataclass
class DatasetSource:
    """The files of one dataset, relative to its root (the folder holding ``ratings.csv``)."""

    location: Path
    root: str  # folder inside a zip, or "" (posix, no trailing slash)
    files: dict[str, int] = field(default_factory=dict)  # relative path → size in bytes
    per_user_files: list[PerUserFile] = field(default_factory=list)

    @property
    def is_zip(self) -> bool:
        return self.location.is_file()

    @property
    def has_movielens(self) -> bool:
        return "ratings.csv" in self.files and "movies.csv" in self.files

    def has(self, relative_path: str) -> bool:
        return relative_path in self.files

    def size(self, relative_path: str) -> int:
        return self.files[relative_path]

    @contextmanager
    def open(self, relative_path: str) -> Iterator[IO[bytes]]:
        """Open one file of the dataset for binary reading."""
        if self.is_zip:
            member = f"{self.root}/{relative_path}" if self.root else relative_path
            with zipfile.ZipFile(self.location) as archive, archive.open(member) as stream:
                yield stream
        else:
            with (self.location / self.root / relative_path).open("rb") as stream:
                yield stream

    def used_files(self) -> list[str]:
        """The files an import reads, in a stable order."""
        names = [name for name in (*MOVIELENS_FILES, "archetypes.csv") if name in self.files]
        names.extend(per_user.relative_path for per_user in self.per_user_files)
        return names

    def fingerprint(self) -> str:
        """SHA-256 over the names and contents of the files an import reads.

        The same files give the same fingerprint whether they come from a folder or a zip.
        """
        digest = hashlib.sha256()
        for name in self.used_files():
            digest.update(name.encode() + b"\0")
            with self.open(name) as stream:
                while block := stream.read(_HASH_BLOCK):
                    digest.update(block)
            digest.update(b"\0")
        return digest.hexdigest()


def default_name(path: Path) -> str:
    """The dataset name a path gives: its folder name or zip stem (``ml-32m.zip`` → ``ml-32m``)."""
    resolved = path.resolve()
    return resolved.stem if resolved.is_file() else resolved.name


def open_source(path: Path) -> DatasetSource:
    """Find a dataset's files in a folder or a zip; raise if it holds none this project reads."""
    if not path.exists():
        raise DatasetLayoutError(f"{path}: no such file or folder")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DatasetLayoutError(f"{path}: not a folder or a zip file")
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
        for info in members:
            _refuse_bomb(path, info)
        listing = {info.filename: info.file_size for info in members}
    else:
        listing = {
            file.relative_to(path).as_posix(): file.stat().st_size
            for file in path.rglob("*")
            if file.is_file()
        }
    root = _find_root(listing)
    if root is None:
        raise DatasetLayoutError(
            f"{path}: no dataset found (expected ratings.csv and movies.csv, MovieLens format, "
            "or the seed study's movies_enriched-user<ID>.csv files)"
        )
    prefix = f"{root}/" if root else ""
    files = {
        name[len(prefix) :]: size
        for name, size in listing.items()
        if name.startswith(prefix) and not _is_junk(name)
    }
    per_user = sorted(
        (
            PerUserFile(relative_path=name, user_id=int(match.group(1)))
            for name in files
            if (match := PER_USER_FILE.match(PurePosixPath(name).name))
        ),
        key=lambda file: file.relative_path,
    )
    return DatasetSource(location=path, root=root, files=files, per_user_files=per_user)


def _refuse_bomb(path: Path, info: zipfile.ZipInfo) -> None:
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > _RATIO_CHECKED_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
        raise DatasetLayoutError(
            f"{path}: {info.filename} would expand {ratio:,.0f}× to {info.file_size:,} bytes; "
            "refused (a dataset's CSV files compress about 5×)"
        )


def _is_junk(name: str) -> bool:
    # macOS zips carry resource forks that look like real files
    return name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith("._")


def _find_root(listing: dict[str, int]) -> str | None:
    """The shallowest folder holding ``ratings.csv`` (or, failing that, per-user files)."""
    candidates = [
        str(PurePosixPath(name).parent)
        for name in listing
        if PurePosixPath(name).name == "ratings.csv" and not _is_junk(name)
    ]
    if not candidates:
        candidates = [
            _top_folder(name)
            for name in listing
            if PER_USER_FILE.match(PurePosixPath(name).name) and not _is_junk(name)
        ]
    if not candidates:
        return None
    best = min(candidates, key=lambda folder: (folder.count("/"), folder))
    return "" if best == "." else best


def _top_folder(name: str) -> str:
    # Per-user files may sit in users_1/, users_2/, …: the dataset root is above those.
    parts = PurePosixPath(name).parts
    return "." if len(parts) <= 2 else str(PurePosixPath(*parts[:-2]))
