"""Fixtures every test can use.

The suite runs once per database: ``PREFSHIFT_TEST_DATABASE=sqlite`` (default) or ``postgres``
(``PREFSHIFT_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``).
Each test that asks for a database gets a fresh one, cloned from a template migrated once per
session (Postgres: ``CREATE DATABASE … TEMPLATE``; SQLite: a file copy), so no state is shared
between tests and separate service processes can open the same database.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from prefshift import migrate

#: the Host names of the in-process clients (Starlette's TestClient, the ASGI transports' base
#: URLs); every other request's Host is checked as in production (prefshift_common.hosts)
os.environ.setdefault("PREFSHIFT_ALLOWED_HOSTS", "testserver,simulator,proxy,recommender")

# pytest-xdist's workers start with COLUMNS=80, and the CLI's rich consoles, created when their
# module is imported, would keep that width for good; without it they follow the COLUMNS a test's
# CliRunner sets, as they do in one process.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_DATABASE = os.environ.get("PREFSHIFT_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get(
    "PREFSHIFT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pytest_report_header() -> str:
    return f"prefshift test database: {TEST_DATABASE}"


def touches_database(item: pytest.Item) -> bool:
    """A test touches the database when it gets one from the fixtures here (its fixtures include
    ``database_factory``: ``database_url``, ``ml_small_database_url``, ``services``, …) or is
    marked ``database``."""
    fixtures = getattr(item, "fixturenames", ())
    return "database_factory" in fixtures or item.get_closest_marker("database") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Which tests each pass runs (docs/development.md).

    The SQLite pass runs every test but those marked ``postgres_only``; the Postgres pass runs
    only the tests that touch the database, less those marked ``sqlite_only``: a test that
    touches no database would only run a second time. Tests under ``tests/e2e/`` are marked
    ``e2e`` (they start the services as processes), and ``slow`` and ``e2e`` tests are moved to
    the front, so that parallel workers start on the long ones and finish together.
    """
    e2e = Path(__file__).parent / "e2e"
    for item in items:
        if e2e in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        if TEST_DATABASE == "postgres":
            runs = touches_database(item) and item.get_closest_marker("sqlite_only") is None
        else:
            runs = item.get_closest_marker("postgres_only") is None
        (kept if runs else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    # stable: within each group the order of collection is kept
    kept.sort(key=_start_early)
    items[:] = kept


def _start_early(item: pytest.Item) -> int:
    if item.get_closest_marker("slow"):
        return 0
    return 1 if item.get_closest_marker("e2e") else 2


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project (real MovieLens, TMDB-shaped metadata)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"test data not found at {SHARED_DATA}")
    return SHARED_DATA


class DatabaseFactory:
    """Makes, clones and drops test databases of the kind under test."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.created: list[str] = []
        self._admin = None
        # Dropping a Postgres database takes a second or more; a worker thread drops each test's
        # databases while the next tests run, instead of all of them at the end of the session.
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-database")
        self._drops: list[Future[None]] = []
        if TEST_DATABASE == "postgres":
            self._admin = create_engine(
                migrate_url(POSTGRES_URL), isolation_level="AUTOCOMMIT", pool_size=1
            )

    @property
    def kind(self) -> str:
        return TEST_DATABASE

    def new(
        self, template: str | None = None, *, directory: Path | None = None, keep: bool = False
    ) -> str:
        """A new database URL; a copy of ``template`` when given, else empty. ``keep``: not
        dropped at the end of this worker's session (a template ``SharedTemplates`` drops)."""
        name = f"prefshift_test_{uuid.uuid4().hex[:12]}"
        if self._admin is None:
            path = (directory or self.workdir) / f"{name}.db"
            if template is not None:
                source = make_url(template).database
                assert source is not None
                shutil.copyfile(source, path)
            url = f"sqlite:///{path}"
        else:
            clause = f" TEMPLATE {make_url(template).database}" if template else ""
            with self._admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
            url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        if not keep:
            self.created.append(url)
        return url

    def release(self, url: str) -> None:
        """Drop a database a test no longer needs, in the background."""
        if url in self.created:
            self.created.remove(url)
            self._drops.append(self._dropper.submit(self._drop, url))

    def drop_now(self, url: str) -> None:
        self._drop(url)

    def _drop(self, url: str) -> None:
        if self._admin is None:
            database = make_url(url).database
            if database:
                for suffix in ("", "-wal", "-shm"):
                    Path(database + suffix).unlink(missing_ok=True)
            return
        name = make_url(url).database
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def drop_all(self) -> None:
        for url in list(self.created):
            self.release(url)
        self._dropper.shutdown(wait=True)
        for drop in self._drops:
            drop.result()
        if self._admin is not None:
            self._admin.dispose()


def migrate_url(url: str) -> str:
    from prefshift_common.db import sync_url

    return sync_url(url)


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    factory.drop_all()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SharedTemplates:
    """The session templates (migrated, datasets imported), made once per test run and shared by
    the parallel workers: the first worker to need one makes it under a lock, the others clone
    it. Importing a dataset costs seconds of CPU, once per run instead of once per worker. The
    last worker to finish drops them (each worker notes that it uses them)."""

    def __init__(self, root: Path, factory: DatabaseFactory, worker: str) -> None:
        self.root = root
        self.factory = factory
        self.user = root / f"{worker}.using"
        with _locked(root / "registry.lock"):
            self.user.touch()

    def get(self, key: str, make: Callable[[], str]) -> str:
        record = self.root / f"{key}.url"
        with _locked(self.root / f"{key}.lock"):
            if record.exists():
                return record.read_text()
            url = make()
            _dispose_all()  # a Postgres template must have no open connections when cloned
            record.write_text(url)
            return url

    def new(self, template: str | None = None) -> str:
        return self.factory.new(template, directory=self.root, keep=True)

    def leave(self) -> None:
        with _locked(self.root / "registry.lock"):
            self.user.unlink(missing_ok=True)
            if any(self.root.glob("*.using")):
                return
            for record in self.root.glob("*.url"):
                self.factory.drop_now(record.read_text())
                record.unlink()


@pytest.fixture(scope="session")
def shared_templates(
    tmp_path_factory: pytest.TempPathFactory, database_factory: DatabaseFactory
) -> Iterator[SharedTemplates]:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = tmp_path_factory.getbasetemp()
    # xdist gives each worker <the run's basetemp>/<worker>: the parent is the run's own
    root = (base.parent if worker else base) / "shared-templates"
    root.mkdir(exist_ok=True)
    templates = SharedTemplates(root, database_factory, worker or "main")
    yield templates
    templates.leave()


@pytest.fixture(scope="session")
def migrated_template(shared_templates: SharedTemplates) -> str:
    """An empty database migrated to head, used as the template of every test database."""

    def make() -> str:
        url = shared_templates.new()
        migrate.upgrade(url)
        return url

    return shared_templates.get("migrated", make)


def _dispose_all() -> None:
    # A Postgres template must have no open connections when it is cloned.
    import gc

    from sqlalchemy.engine import Engine

    for obj in gc.get_objects():
        if isinstance(obj, Engine):
            obj.dispose()


@pytest.fixture
def database_url(database_factory: DatabaseFactory, migrated_template: str) -> Iterator[str]:
    """A fresh database of the kind under test, migrated to head, for this test alone."""
    url = database_factory.new(template=migrated_template)
    yield url
    database_factory.release(url)


@pytest.fixture
def empty_database_url(database_factory: DatabaseFactory) -> Iterator[str]:
    """A fresh, unmigrated database (for migration tests)."""
    url = database_factory.new()
    yield url
    database_factory.release(url)


@pytest.fixture
def clone_database(database_factory: DatabaseFactory) -> Iterator[Callable[[str], str]]:
    """Clone a database (e.g. a session-scoped imported one) for one test."""
    clones: list[str] = []

    def clone(template: str) -> str:
        url = database_factory.new(template=template)
        clones.append(url)
        return url

    yield clone
    for url in clones:
        database_factory.release(url)


# --- imported datasets (session templates, cloned per test) ------------------------------------


def _imported_template(
    shared_templates: SharedTemplates, key: str, template: str, *datasets: tuple[Path, str]
) -> str:
    def make() -> str:
        from prefshift_datasets.importer import import_dataset

        url = shared_templates.new(template)
        for path, name in datasets:
            import_dataset(url, path, name=name)
        return url

    return shared_templates.get(key, make)


@pytest.fixture(scope="session")
def ml_small_template(
    shared_templates: SharedTemplates, migrated_template: str, shared_data: Path
) -> str:
    """A migrated database with ``../shared/data/ml-latest-small`` imported as ``ml-latest-small``.

    Session-scoped: never write to it; clone it (``ml_small_database_url``) to get one to change.
    """
    return _imported_template(
        shared_templates,
        "ml-latest-small",
        migrated_template,
        (shared_data / "ml-latest-small", "ml-latest-small"),
    )


@pytest.fixture(scope="session")
def seed_cohort_template(
    shared_templates: SharedTemplates, migrated_template: str, shared_data: Path
) -> str:
    """A migrated database with ``../shared/data/seed-cohort`` imported as ``seed-cohort``."""
    return _imported_template(
        shared_templates,
        "seed-cohort",
        migrated_template,
        (shared_data / "seed-cohort", "seed-cohort"),
    )


@pytest.fixture(scope="session")
def both_datasets_template(
    shared_templates: SharedTemplates, ml_small_template: str, shared_data: Path
) -> str:
    """``ml-latest-small`` and ``seed-cohort`` in one database."""
    return _imported_template(
        shared_templates, "both", ml_small_template, (shared_data / "seed-cohort", "seed-cohort")
    )


@pytest.fixture
def ml_small_database_url(
    database_factory: DatabaseFactory, ml_small_template: str
) -> Iterator[str]:
    """A fresh database for this test alone, with ``ml-latest-small`` imported."""
    url = database_factory.new(template=ml_small_template)
    yield url
    database_factory.release(url)


@pytest.fixture
def seed_cohort_database_url(
    database_factory: DatabaseFactory, seed_cohort_template: str
) -> Iterator[str]:
    """A fresh database for this test alone, with ``seed-cohort`` imported."""
    url = database_factory.new(template=seed_cohort_template)
    yield url
    database_factory.release(url)


@pytest.fixture
def both_datasets_database_url(
    database_factory: DatabaseFactory, both_datasets_template: str
) -> Iterator[str]:
    """A fresh database for this test alone, with ``ml-latest-small`` and ``seed-cohort``."""
    url = database_factory.new(template=both_datasets_template)
    yield url
    database_factory.release(url)
