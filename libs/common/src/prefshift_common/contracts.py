"""Pydantic models of every payload that crosses a service boundary (docs/architecture.md, "The
contracts"). Every list, string and number is bounded; strings with NUL bytes are refused."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from prefshift_common.movies import release_year


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    return value


class _NoNul:
    """Refuses NUL bytes, and says so in the JSON schema (``pattern``), so that clients and
    schema-driven testers know such a string is invalid."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_no_nul, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", "^[^\\x00]*$")
        return json_schema


#: Add to any ``Annotated[str, Field(max_length=...), NoNul]`` that may reach the database.
NoNul = _NoNul()


def _ascii_digits(value: Any) -> Any:
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("must be a whole number written in ASCII digits (0-9)")
    return value


_DIGITS = re.compile(r"[0-9]{1,10}")

#: Put after ``Path(...)`` or ``Query(...)`` on an ``int`` parameter: ids and counts in URLs are
#: written in ASCII digits only (at most 10). pydantic's own parsing of a URL's text also takes
#: ``+1``, ``1.0``, `` 1``, ``1_0`` and other scripts' digits (``١``), so ``/runs/+1`` was run 1.
#: The schema stays ``integer``: what it refuses is no integer's text.
AsciiDigits = BeforeValidator(_ascii_digits)

TmdbId = Annotated[int, Field(ge=1, le=2_147_483_647, description="TMDB movie id.")]
MovieLensId = Annotated[int, Field(ge=1, le=2_147_483_647, description="MovieLens movieId.")]
UserId = Annotated[int, Field(ge=1, le=2_147_483_647, description="User id in a dataset.")]
Rating = Annotated[
    float, Field(ge=0.5, le=5.0, multiple_of=0.5, description="0.5–5.0 in 0.5 steps.")
]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
Name = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
]
DatasetName = Name
Feeling = Annotated[str, Field(max_length=2000), NoNul]
Title = Annotated[str, Field(max_length=500), NoNul]
ShortText = Annotated[str, Field(max_length=200), NoNul]

MAX_HISTORY = 5000


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrictContract(Contract):
    """A request model: unknown keys are refused, and so are values of another JSON type
    (``"seed": false``, ``"n": "2"``, ``"n": 2.0``, ``"user_id": true`` — pydantic's lax mode
    reads them as 0, 2, 2 and 1); a number field still takes a whole number. Every service's
    request bodies are built on it (the orchestrator's public API and the internal POSTs)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --- recommender ------------------------------------------------------------------------------


class RatedMovie(StrictContract):
    """A movie and the rating given to it."""

    tmdb_id: TmdbId
    rating: Rating


class RecommendationRequest(StrictContract):
    """Ask one implementation for ``n`` movies for a user or a history (cold start)."""

    recommender: Name = Field(examples=["als"])
    dataset: DatasetName | None = Field(
        default=None, description="Dataset the model was trained on; default: the service's."
    )
    user_id: UserId | None = None
    history: list[RatedMovie] = Field(default_factory=list, max_length=MAX_HISTORY)
    n: int = Field(default=30, ge=1, le=500)
    exclude: list[TmdbId] = Field(default_factory=list, max_length=20_000)
    seed: Seed | None = None


class RecommendedItem(Contract):
    tmdb_id: TmdbId
    movielens_id: MovieLensId | None = None
    title: Title
    score: float


class RecommendationResponse(Contract):
    recommender: Name
    model_version: ShortText
    request_id: ShortText
    items: list[RecommendedItem]
    short: bool = Field(default=False, description="Fewer than n items could be found.")
    unknown_history: int = Field(
        default=0, ge=0, description="History movies the model does not know (ignored)."
    )
    unresolved_titles: int = Field(
        default=0,
        ge=0,
        description="Titles an LLM recommender's model named that named no movie clearly "
        "(invented, or not matching by year, sequel number or subtitle): dropped, not guessed.",
    )
    note: Annotated[str, Field(max_length=2000), NoNul] | None = Field(
        default=None,
        description="Why the page is short (or empty), in words; recorded with the page.",
    )


class RecommenderInfo(Contract):
    name: Name
    kind: Literal["collaborative", "baseline", "llm", "external"]
    trained: bool
    model_version: str | None = None
    dataset: str | None = None
    status: Literal["untrained", "training", "ready", "failed", "unavailable"] = "untrained"
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    detail: str | None = None


# --- simulator --------------------------------------------------------------------------------


class Experience(StrictContract):
    """A movie the persona was shown and rated, with how it felt about it."""

    tmdb_id: TmdbId
    rating: Rating
    feeling: Feeling = ""


class Persona(StrictContract):
    """A simulated person: a real user's rated history plus what the persona experienced since."""

    user_id: UserId
    dataset: DatasetName | None = None
    history: list[RatedMovie] = Field(max_length=MAX_HISTORY)
    experiences: list[Experience] = Field(default_factory=list, max_length=MAX_HISTORY)


Backend = Literal["llm", "embedded"]


class ShownPrediction(StrictContract):
    """A predicted rating shown to the persona beside a movie, the way a recommender's page shows
    "we think you'll rate this 4.5 stars" (Cosley et al., CHI 2003): the shown-prediction arms and
    the ``rerate`` design send one per movie they show it for."""

    tmdb_id: TmdbId
    stars: float = Field(
        ge=0.5,
        le=5.0,
        description="The predicted rating shown, in stars (0.5–5.0; shown rounded to 0.1).",
    )


class RatingsRequest(StrictContract):
    persona: Persona
    items: list[TmdbId] = Field(min_length=1, max_length=500)
    backend: Backend | None = None
    seed: Seed | None = None
    occasion: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="The rating occasion: the protocol's page (0 for the baseline, p after page "
        "p). The embedded persona's per-occasion response noise is drawn from it, so a movie "
        "re-rated on another page can get another rating.",
    )
    persona_model: Name | None = Field(
        default=None,
        description="Named parameter set of the embedded persona (GET /backends lists them); "
        "default: the simulator's.",
    )
    shown: list[ShownPrediction] = Field(
        default_factory=list,
        max_length=500,
        description="Predicted ratings shown beside some of the items (at most one per item, each "
        "one of ``items``); an item without one is shown with no prediction.",
    )

    @model_validator(mode="after")
    def _shown_among_items(self) -> RatingsRequest:
        items = set(self.items)
        seen: set[int] = set()
        for prediction in self.shown:
            if prediction.tmdb_id not in items:
                raise ValueError(f"shown: tmdb {prediction.tmdb_id} is not one of the items")
            if prediction.tmdb_id in seen:
                raise ValueError(f"shown: tmdb {prediction.tmdb_id} has two predictions")
            seen.add(prediction.tmdb_id)
        return self

    def shown_stars(self) -> dict[int, float]:
        """The predicted rating shown beside each item that has one."""
        return {prediction.tmdb_id: prediction.stars for prediction in self.shown}


class ItemRating(Contract):
    tmdb_id: TmdbId
    rating: Rating
    feeling: Feeling = ""


class Usage(Contract):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cached: bool = False
    latency_ms: float = Field(default=0.0, ge=0.0)


class MissingRating(Contract):
    """A requested movie the persona gave no valid rating for, and why."""

    tmdb_id: TmdbId
    reason: Annotated[str, Field(max_length=500), NoNul]


class RatingsResponse(Contract):
    backend: Backend
    model: str | None = None
    persona_model: str | None = Field(
        default=None, description="The embedded persona's parameter set that rated (embedded)."
    )
    population: str | None = Field(
        default=None,
        description="The dataset the embedded persona's collaborative statistics came from: "
        "the persona's own, or the population its users were drawn from "
        "(PREFSHIFT_SIMULATOR_REFERENCE_DATASETS); null without one (embedded) and for llm.",
    )
    ratings: list[ItemRating]
    missing: list[MissingRating] = Field(
        default_factory=list,
        description="Requested movies left unrated after every re-ask (llm backend only, and "
        "only up to the simulator's PREFSHIFT_SIMULATOR_MAX_MISSING_SHARE; past it the request "
        "fails with 502).",
    )
    usage: Usage


class PersonaModelInfo(BaseModel):
    """A named parameter set of the embedded persona and where it came from."""

    name: str
    default: bool
    description: str = ""
    source: str = Field(default="", description="What it was fitted to, or taken from.")
    created: str = ""
    estimator: str = ""
    parameters: dict[str, float]
    intervals: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Per fitted parameter, its interval."
    )


class BackendInfo(BaseModel):
    """One backend of ``POST /ratings`` and whether it can serve now."""

    name: Backend
    available: bool
    default: bool
    model: str | None = Field(default=None, description="LLM model name (llm backend).")
    detail: str = ""
    persona_models: list[PersonaModelInfo] = Field(
        default_factory=list, description="Named parameter sets (embedded backend)."
    )


class BackendList(BaseModel):
    """``GET /backends`` of the simulator: what it can rate with now."""

    backends: list[BackendInfo]

    def backend(self, name: str) -> BackendInfo | None:
        return next((backend for backend in self.backends if backend.name == name), None)


# --- tmdb-proxy -------------------------------------------------------------------------------

#: The header of tmdb-proxy's ``GET /3/search/movie`` giving, as a JSON object of TMDB id to
#: year, the MovieLens year of the results without a release date (TMDB's body carries nothing
#: of ours; :class:`prefshift_common.tmdb_client.TmdbProxyClient` merges it).
MOVIELENS_YEARS_HEADER: Final = "x-prefshift-movielens-years"


class Genre(BaseModel):
    id: int
    name: str


class TmdbMovie(BaseModel):
    """A movie in the shape of TMDB's ``GET /3/movie/{id}``; extra TMDB fields pass through."""

    model_config = ConfigDict(extra="allow")

    id: TmdbId
    title: str
    overview: str | None = None
    genres: list[Genre] = Field(default_factory=list)
    release_date: str | None = None
    imdb_id: str | None = None
    original_title: str | None = None
    vote_average: float | None = None
    vote_count: int | None = None
    popularity: float | None = None
    poster_path: str | None = None
    movielens_year: int | None = Field(
        default=None,
        description="prefshift's, not TMDB's: the MovieLens year where TMDB gives no release "
        "date (tmdb-proxy serves it beside TMDB's body; the client merges it).",
    )

    @property
    def year(self) -> int | None:
        known = {"release_date": self.release_date, "movielens_year": self.movielens_year}
        return release_year({**(self.model_extra or {}), **known})

    @property
    def genre_names(self) -> list[str]:
        return [genre.name for genre in self.genres]


class MovieBatchRequest(Contract):
    tmdb_ids: list[TmdbId] = Field(min_length=1, max_length=500)


class MovieBatchResponse(BaseModel):
    """tmdb-proxy's answer to a batch. A request fetches at most a bounded number of uncached
    ids from TMDB, for a bounded time; the others are answered from copies and listed in
    ``stale`` or ``fallback``, or (no copy anywhere) in ``deferred``, and refreshed later."""

    movies: list[TmdbMovie]
    missing: list[int] = Field(default_factory=list, description="Ids TMDB does not know.")
    stale: list[int] = Field(
        default_factory=list,
        description="Ids answered from an expired cached copy of TMDB's record.",
    )
    fallback: list[int] = Field(
        default_factory=list,
        description="Ids answered from imported records or the dataset's own movie (title, "
        "year, genres) because TMDB was not asked or did not answer in time.",
    )
    deferred: list[int] = Field(
        default_factory=list,
        description="Ids with no copy that TMDB did not answer in time: left out of `movies`, "
        "fetched in the background; ask again later.",
    )
    movielens_years: dict[int, int] = Field(
        default_factory=dict,
        description="The MovieLens year of the movies in `movies` that have no `release_date` "
        "(the bodies are TMDB's shape: nothing of ours in them).",
    )


class SearchResult(BaseModel):
    """One item of ``GET /3/search/movie`` in TMDB's shape."""

    model_config = ConfigDict(extra="allow")

    id: int
    title: str
    original_title: str
    release_date: str = Field(description='"YYYY-MM-DD", or "" when unknown.')
    overview: str
    genre_ids: list[int]
    vote_average: float
    vote_count: int
    popularity: float
    poster_path: str | None = None
    movielens_year: int | None = Field(
        default=None,
        description="prefshift's, not TMDB's: the MovieLens year where `release_date` is \"\" "
        "(from the proxy's `X-Prefshift-Movielens-Years` header, merged by the client).",
    )


class SearchResults(BaseModel):
    """TMDB's paged search answer."""

    model_config = ConfigDict(extra="allow")

    page: int
    results: list[SearchResult]
    total_pages: int
    total_results: int
