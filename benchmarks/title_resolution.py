"""Title resolution on a labelled set of real, near-miss and invented titles: the share of each
class resolved to the movie it names, resolved to a wrong movie, and dropped.

    uv run python benchmarks/title_resolution.py                    # 60 titles per variant
    uv run python benchmarks/title_resolution.py --per-variant 100 --seed 1

The set is generated from ``../shared/data`` (``tests/titles/labelled_set.py``; nothing is
stored). The world is the LLM recommenders': the ``ml-latest-small`` catalogue, then the real
tmdb-proxy app, offline, over ``tmdb-offline/movies.jsonl`` and the dataset (a fresh SQLite
database made here), in-process over ASGI.

Baseline of the same run, on the same titles and the same proxy: **nearest title**, the rule
before year, sequel-number and subtitle agreement — the closest title at a ``rapidfuzz`` ratio of
88 or more, the year checked (± 1) only where a catalogue year or a TMDB release date is known.
Goal: wrong-resolved under 1% (invented titles and overall).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the labelled set lives with the tests

from prefshift_common.logging import configure_logging  # noqa: E402
from prefshift_common.title_matching import title_form  # noqa: E402
from prefshift_common.title_resolver import search_hits  # noqa: E402
from prefshift_common.tmdb_client import TmdbProxyClient  # noqa: E402
from prefshift_recommender.catalog import Catalog  # noqa: E402
from prefshift_recommender.resolver import TitleResolver  # noqa: E402
from tests.titles.labelled_set import LabelledTitle, labelled_titles, tally  # noqa: E402
from tests.titles.test_resolution import load_catalog  # noqa: E402

CUTOFF = 88.0


class NearestTitle:
    """The baseline: the closest title above the cutoff, the year checked only where known."""

    def __init__(self, catalog: Catalog, proxy: httpx.AsyncClient) -> None:
        self.proxy = proxy
        self.keys: list[str] = []
        self.owners: list[tuple[int, int | None]] = []
        for movie in catalog.titles.movies:
            for name in movie.names:
                self.keys.append(title_form(name).key)
                self.owners.append((movie.tmdb_id, movie.year))

    @staticmethod
    def _close(year: int | None, found_year: int | None) -> bool:
        return year is None or found_year is None or abs(found_year - year) <= 1

    async def resolve(self, title: str, year: int | None) -> int | None:
        key = title_form(title).key
        for _, score, i in process.extract(key, self.keys, scorer=fuzz.ratio, limit=10):
            tmdb_id, found_year = self.owners[i]
            if score >= CUTOFF and self._close(year, found_year):
                return tmdb_id
        for sent_year in dict.fromkeys([year, None]):
            params: dict[str, str | int] = {"query": title}
            if sent_year is not None:
                params["year"] = sent_year
            results = (await self.proxy.get("/3/search/movie", params=params)).json()["results"]
            for hit, result in zip(search_hits({"results": results}), results, strict=False):
                release = str(result.get("release_date") or "")
                found_year = int(release[:4]) if release[:4].isdigit() else None
                score = max(fuzz.ratio(key, title_form(n).key) for n in hit.names)
                if score >= CUTOFF and self._close(year, found_year):
                    return hit.tmdb_id
        return None


def report(
    name: str,
    titles: list[LabelledTitle],
    found: list[int | None],
    seconds: float,
    *,
    show_misses: bool = False,
) -> None:
    print(f"\n{name}  ({len(titles)} titles, {1000 * seconds / len(titles):.1f} ms per title)")
    for label, counts in tally(titles, found).items():
        print("  " + counts.row(label))
    wrong: dict[str, int] = {}
    for title, tmdb_id in zip(titles, found, strict=True):
        if tmdb_id is not None and tmdb_id != title.expected:
            wrong[title.variant] = wrong.get(title.variant, 0) + 1
    if wrong:
        print("  wrong-resolved by variant: " + ", ".join(f"{k} {v}" for k, v in wrong.items()))
    if show_misses:
        for title, tmdb_id in zip(titles, found, strict=True):
            if tmdb_id is not None and tmdb_id != title.expected:
                print(
                    f"    wrong: {title.title!r} ({title.year}) → {tmdb_id}, names {title.expected}"
                )
            elif tmdb_id is None and title.expected is not None:
                print(f"    dropped ({title.variant}): {title.title!r} ({title.year})")


async def measure(database_url: str, catalog: Catalog, titles: list[LabelledTitle]) -> None:
    from prefshift_tmdb_proxy.config import Settings
    from prefshift_tmdb_proxy.main import create_app

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database_url,
        tmdb_api_key=None,
        tmdb_read_token=None,
        log_level="WARNING",  # one line per request or dropped title: too many
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy", timeout=60
        ) as proxy,
    ):
        await proxy.get("/3/search/movie", params={"query": "warm up the title index"})
        resolver = TitleResolver(catalog, TmdbProxyClient(proxy))
        started = time.perf_counter()
        movies = [await resolver.resolve(t.title, t.year) for t in titles]
        rules_s = time.perf_counter() - started
        nearest = NearestTitle(catalog, proxy)
        started = time.perf_counter()
        baseline = [await nearest.resolve(t.title, t.year) for t in titles]
        baseline_s = time.perf_counter() - started
    found = [movie.tmdb_id if movie is not None else None for movie in movies]
    report(
        "prefshift rules (year ± 1, sequel numbers, subtitles)",
        titles,
        found,
        rules_s,
        show_misses=True,
    )
    report("baseline: nearest title (ratio ≥ 88, year if known)", titles, baseline, baseline_s)
    print(f"\ndropped titles counted by the resolver: {resolver.dropped}")


def main() -> None:
    configure_logging("WARNING")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--per-variant", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from prefshift import migrate
    from prefshift_common.db import create_sync_db_engine
    from prefshift_datasets.importer import import_dataset
    from prefshift_tmdb_proxy.importer import import_tmdb_jsonl

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    titles = labelled_titles(args.data, per_variant=args.per_variant, seed=args.seed)
    with tempfile.TemporaryDirectory() as workdir:
        url = f"sqlite:///{workdir}/titles.db"
        started = time.perf_counter()
        migrate.upgrade(url)
        import_dataset(url, args.data / "ml-latest-small", name="ml-latest-small")
        import_tmdb_jsonl(url, args.data / "tmdb-offline" / "movies.jsonl")
        engine = create_sync_db_engine(url)
        try:
            catalog = load_catalog(engine, "ml-latest-small")
        finally:
            engine.dispose()
        print(f"database ready in {time.perf_counter() - started:.1f} s (SQLite)")
        asyncio.run(measure(url, catalog, titles))
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
