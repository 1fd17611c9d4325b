"""``prefshift data import|download|list`` and ``resolve_dataset``, through the real CLI and real
HTTP on loopback (a stand-in for files.grouplens.org that serves a zip and its ``.md5``)."""

from __future__ import annotations

import hashlib
import socket
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefshift.cli.main import app
from prefshift_datasets.config import DatasetSettings
from prefshift_datasets.errors import DatasetError
from prefshift_datasets.resolve import resolve_dataset
from tests.datasets.helpers import counts

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> dict[str, str]:
    values = {
        "PREFSHIFT_DATABASE_URL": database_url,
        "PREFSHIFT_DATA_DIR": str(tmp_path / "data"),
        "PREFSHIFT_DATASETS_DOWNLOAD_URL": f"http://127.0.0.1:{_closed_port()}/datasets",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tiny_zip(path: Path, folder_name: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            f"{folder_name}/movies.csv",
            "movieId,title,genres\n1,Toy Story (1995),Animation\n2,Heat (1995),Crime\n",
        )
        archive.writestr(
            f"{folder_name}/links.csv", "movieId,imdbId,tmdbId\n1,0114709,862\n2,0113277,949\n"
        )
        archive.writestr(
            f"{folder_name}/ratings.csv",
            "userId,movieId,rating,timestamp\n7,1,4.5,1\n7,2,2.0,2\n8,2,5.0,3\n",
        )
    return path


@pytest.fixture
def grouplens(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server with ``datasets/ml-latest-small.zip`` and its ``.md5``."""
    root = tmp_path / "www"
    (root / "datasets").mkdir(parents=True)
    archive = _tiny_zip(root / "datasets" / "ml-latest-small.zip", "ml-latest-small")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    (root / "datasets" / "ml-latest-small.zip.md5").write_text(
        f"MD5 (ml-latest-small.zip) = {md5}\n"
    )
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/datasets", root / "datasets"
    finally:
        server.shutdown()
        server.server_close()


def test_import_then_list_then_reimport(env: dict[str, str], shared_data: Path) -> None:
    result = runner.invoke(app, ["data", "import", str(shared_data / "ml-latest-small")])
    assert result.exit_code == 0, result.output
    assert "ml-latest-small: imported — 100,836 ratings, 9,742 movies, 610 users" in result.stdout
    listed = runner.invoke(app, ["data", "list"])
    assert listed.exit_code == 0, listed.output
    assert "ml-latest-small" in listed.stdout and "100,836" in listed.stdout
    again = runner.invoke(app, ["data", "import", str(shared_data / "ml-latest-small")])
    assert again.exit_code == 0
    assert "already imported, unchanged" in again.stdout
    assert counts(env["PREFSHIFT_DATABASE_URL"], "ml-latest-small")["ratings"] == 100_836


def test_import_with_a_name_and_a_malformed_file(env: dict[str, str], tmp_path: Path) -> None:
    archive = _tiny_zip(tmp_path / "tiny.zip", "inner")
    result = runner.invoke(app, ["data", "import", str(archive), "--name", "tiny-set"])
    assert result.exit_code == 0, result.output
    assert "tiny-set: imported — 3 ratings, 2 movies, 2 users" in result.stdout
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n")
    (broken / "ratings.csv").write_text("userId,movieId,rating\n1,1,4.0\n1,1\n")
    failed = runner.invoke(app, ["data", "import", str(broken)])
    assert failed.exit_code == 1
    assert "error: ratings.csv, line 3: missing field (truncated row?)" in failed.stderr


def test_list_when_empty(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0
    assert "no datasets imported" in result.stdout


def test_download_offline_is_one_clear_line(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["data", "download", "ml-32m"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "cannot reach 127.0.0.1" in lines[0] and "local folder or zip" in lines[0]
    assert "Traceback" not in result.output
    assert not list((Path(env["PREFSHIFT_DATA_DIR"]) / "datasets").glob("*.part"))


def test_download_verifies_md5_and_imports(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, grouplens: tuple[str, Path]
) -> None:
    url, _served = grouplens
    monkeypatch.setenv("PREFSHIFT_DATASETS_DOWNLOAD_URL", url)
    result = runner.invoke(app, ["data", "download", "ml-latest-small"])
    assert result.exit_code == 0, result.output
    assert "MD5 verified" in result.stdout
    assert "ml-latest-small: imported — 3 ratings, 2 movies, 2 users" in result.stdout
    saved = Path(env["PREFSHIFT_DATA_DIR"]) / "datasets" / "ml-latest-small.zip"
    assert saved.is_file()
    again = runner.invoke(app, ["data", "download", "ml-latest-small"])
    assert "already downloaded" in again.stdout and "unchanged" in again.stdout


def test_download_with_a_wrong_md5_keeps_nothing(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, grouplens: tuple[str, Path]
) -> None:
    url, served = grouplens
    (served / "ml-latest-small.zip.md5").write_text("0" * 32 + "  ml-latest-small.zip\n")
    monkeypatch.setenv("PREFSHIFT_DATASETS_DOWNLOAD_URL", url)
    result = runner.invoke(app, ["data", "download", "ml-latest-small"])
    assert result.exit_code == 1
    assert "does not match the published 000000" in result.stderr
    assert list((Path(env["PREFSHIFT_DATA_DIR"]) / "datasets").iterdir()) == []


def test_download_without_a_published_md5_says_so(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, grouplens: tuple[str, Path]
) -> None:
    url, served = grouplens
    (served / "ml-latest-small.zip.md5").unlink()
    monkeypatch.setenv("PREFSHIFT_DATASETS_DOWNLOAD_URL", url)
    result = runner.invoke(app, ["data", "download", "ml-latest-small", "--no-import"])
    assert result.exit_code == 0, result.output
    assert "checksum not verified" in result.stdout
    assert "imported" not in result.stdout


def test_unknown_dataset_name_for_download(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["data", "download", "ml-1b"])
    assert result.exit_code == 1
    assert "unknown dataset 'ml-1b'" in result.stderr


def test_resolve_dataset_in_order(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    grouplens: tuple[str, Path],
    shared_data: Path,
) -> None:
    offline = DatasetSettings()
    # a local path is imported under its folder name
    local = resolve_dataset(str(shared_data / "ml-latest-small"), settings=offline)
    assert (local.name, local.how) == ("ml-latest-small", "local")
    # then the name is an imported dataset
    again = resolve_dataset("ml-latest-small", settings=offline)
    assert (again.name, again.dataset_id, again.how) == (
        "ml-latest-small",
        local.dataset_id,
        "imported",
    )
    # a GroupLens name not imported and not downloaded, offline: a clear error
    with pytest.raises(DatasetError, match=r"offline.*local folder or zip"):
        resolve_dataset("ml-32m", settings=offline)
    # a GroupLens zip already in $PREFSHIFT_DATA_DIR/datasets is used without the network
    offline.datasets_dir.mkdir(parents=True, exist_ok=True)
    _tiny_zip(offline.datasets_dir / "ml-32m.zip", "ml-32m")
    cached = resolve_dataset("ml-32m", settings=offline)
    assert (cached.name, cached.how) == ("ml-32m", "cached")
    # unknown names and missing paths
    with pytest.raises(DatasetError, match="not an imported dataset, a local path"):
        resolve_dataset("no-such-dataset", settings=offline)
    with pytest.raises(DatasetError, match="no such file"):
        resolve_dataset("./missing/folder", settings=offline)


def test_resolve_dataset_downloads_when_online(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, grouplens: tuple[str, Path]
) -> None:
    url, _served = grouplens
    monkeypatch.setenv("PREFSHIFT_DATASETS_DOWNLOAD_URL", url)
    resolved = resolve_dataset("ml-latest-small")
    assert (resolved.name, resolved.how) == ("ml-latest-small", "downloaded")
    assert counts(env["PREFSHIFT_DATABASE_URL"], "ml-latest-small") == {
        "movies": 2,
        "ratings": 3,
        "dataset_users": 2,
    }


def test_import_migrates_an_empty_database_and_list_says_when_unmigrated(
    monkeypatch: pytest.MonkeyPatch, empty_database_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("PREFSHIFT_DATABASE_URL", empty_database_url)
    monkeypatch.setenv("PREFSHIFT_DATA_DIR", str(tmp_path / "data"))
    unmigrated = runner.invoke(app, ["data", "list"])
    assert unmigrated.exit_code == 1
    assert "run: prefshift db upgrade" in " ".join(unmigrated.stderr.split())
    archive = _tiny_zip(tmp_path / "first.zip", "first")
    imported = runner.invoke(app, ["data", "import", str(archive)])
    assert imported.exit_code == 0, imported.output
    assert "first: imported — 3 ratings" in imported.stdout
    assert runner.invoke(app, ["data", "list"]).exit_code == 0
