"""Imports are bounded while streaming and refuse empty or odd files in one clear line
(issue cases 8 and 9): a zip bomb made of one huge line, a line longer than any dataset has,
an empty ``ratings.csv``, a header-only one, a ``nan`` rating."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefshift.cli.main import app
from tests.datasets.helpers import snapshot

runner = CliRunner()
_CLI_WITH_PEAK_MEMORY = """
import resource, runpy, sys
sys.argv[0] = "prefshift"
try:
    runpy.run_module("prefshift.cli.main", run_name="__main__")
finally:
    print("peak-kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""
MOVIES = "movieId,title,genres\n1,Toy Story (1995),Animation\n2,Heat (1995),Crime\n"
HEADER = "userId,movieId,rating,timestamp\n"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> dict[str, str]:
    values = {"PREFSHIFT_DATABASE_URL": database_url, "PREFSHIFT_DATA_DIR": str(tmp_path / "d")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _the_error(stderr: str) -> str:
    """The one error line the CLI printed (after its progress bars), with no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def _folder(tmp_path: Path, ratings: str) -> Path:
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "movies.csv").write_text(MOVIES)
    (folder / "ratings.csv").write_text(ratings)
    return folder


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        ("", "error: ratings.csv, line 1: empty file (no header)"),
        (HEADER, "error: ratings.csv: no ratings (a header only?); nothing imported"),
        (HEADER + "7,1,4.5,1\n7,2,nan,2\n", "error: ratings.csv, line 3: rating 'nan' is not"),
        (HEADER + "7,1,NA,1\n", "error: ratings.csv, line 2: rating 'NA' is not a number"),
    ],
)
def test_empty_header_only_and_nan_files_get_one_line(
    env: dict[str, str], tmp_path: Path, ratings: str, message: str
) -> None:
    before = snapshot(env["PREFSHIFT_DATABASE_URL"])
    result = runner.invoke(app, ["data", "import", str(_folder(tmp_path, ratings))])
    assert result.exit_code == 1
    assert _the_error(result.stderr).startswith(message), result.stderr
    assert snapshot(env["PREFSHIFT_DATABASE_URL"]) == before


def test_a_line_longer_than_any_dataset_has_is_refused_while_streaming(
    env: dict[str, str], tmp_path: Path
) -> None:
    # random digits compress ~2.4×: no zip-bomb ratio, the streaming line limit refuses it
    digits = os.urandom(4 << 20).translate(bytes(48 + i % 10 for i in range(256)))
    archive = tmp_path / "long-line.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("set/movies.csv", MOVIES)
        out.writestr("set/ratings.csv", (HEADER + "7,1,4.5,1\n").encode() + digits + b"\n")
    result = runner.invoke(app, ["data", "import", str(archive)])
    assert result.exit_code == 1
    assert _the_error(result.stderr).startswith(
        "error: ratings.csv, line 3: line longer than 1,048,576 bytes; refused"
    ), result.stderr


def _deflated_member(name: str, parts: list[tuple[bytes, int]]) -> tuple[bytes, bytes, int]:
    """A zip member (local header + deflate data) of ``block × times`` parts, compressed block by
    block with full flushes, so a GiB of one repeated block costs one block's compression."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    data, crc, size = bytearray(), 0, 0
    for block, times in parts:
        compressed = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
        for _ in range(times):
            data += compressed
            crc = zlib.crc32(block, crc)
        size += len(block) * times
    data += compressor.flush()
    encoded = name.encode()
    header = struct.pack(
        "<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, 8, 0, 33, crc, len(data), size, len(encoded), 0
    )
    central = struct.pack(
        "<4s4B4HL2L5H2L",
        b"PK\x01\x02",
        20, 3, 20, 0, 0, 8, 0, 33, crc, len(data), size, len(encoded), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    return header + encoded + bytes(data), central + encoded, len(header) + len(encoded)


def _one_line_bomb(path: Path, line_bytes: int) -> Path:
    """A zip of movies.csv and a ratings.csv whose second line is ``line_bytes`` of ``1``."""
    members = [
        _deflated_member("bomb/movies.csv", [(MOVIES.encode(), 1)]),
        _deflated_member(
            "bomb/ratings.csv", [(HEADER.encode(), 1), (b"1" * (1 << 20), line_bytes >> 20)]
        ),
    ]
    body, directory = bytearray(), bytearray()
    for local, central, _ in members:
        # the central entry's last field is the local header's offset
        directory += central[:42] + struct.pack("<L", len(body)) + central[46:]
        body += local
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 2, 2, len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))
    return path


@pytest.mark.slow
def test_a_zip_holding_one_gibibyte_line_is_refused_at_once_in_little_memory(
    env: dict[str, str], tmp_path: Path
) -> None:
    archive = _one_line_bomb(tmp_path / "bomb.zip", 1 << 30)
    assert archive.stat().st_size < 2 << 20
    with zipfile.ZipFile(archive) as check:  # a valid zip, 1 GiB inside
        assert check.getinfo("bomb/ratings.csv").file_size == len(HEADER) + (1 << 30)
    # the real CLI in a process of its own, which reports its peak memory as it exits
    done = subprocess.run(
        [sys.executable, "-c", _CLI_WITH_PEAK_MEMORY, "data", "import", str(archive)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    *lines, peak = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    error = _the_error("\n".join(lines))
    assert "would expand" in error and "refused" in error, lines
    assert int(peak.removeprefix("peak-kib ")) < 600 * 1024  # the interpreter, not a GiB
