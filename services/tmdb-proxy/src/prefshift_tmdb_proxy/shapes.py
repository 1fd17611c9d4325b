"""TMDB v3's response shapes, built from a stored record (an imported or cached details record,
or one made from a dataset's movie): the details record with every field TMDB sends, the
sub-resources ``append_to_response`` adds, list items, and TMDB's error bodies.

One rule for fields a record cannot give: present, and ``null`` (lists ``[]``; ``release_date``
and ``overview`` ``""``, as TMDB itself writes an unknown date or a missing overview). A
sub-resource no record holds is TMDB's shape with nothing in it (``{"id", "cast": [],
"crew": []}``), never a missing key. Fields of ours (``_source`` of the shared data files,
``prefshift_source``, ``_year_from_movielens``) never reach a body: provenance goes in the
``X-Prefshift-Source`` header, and the MovieLens year of a record without a release date is
served beside the body by prefshift's own routes (``records.movielens_year``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

#: Every field of TMDB's ``GET /3/movie/{id}``, in TMDB's order, with what a record that does
#: not know it answers.
DETAIL_FIELDS: Final[dict[str, Any]] = {
    "adult": None,
    "backdrop_path": None,
    "belongs_to_collection": None,
    "budget": None,
    "genres": [],
    "homepage": None,
    "id": None,
    "imdb_id": None,
    "origin_country": [],
    "original_language": None,
    "original_title": None,
    "overview": "",
    "popularity": None,
    "poster_path": None,
    "production_companies": [],
    "production_countries": [],
    "release_date": "",
    "revenue": None,
    "runtime": None,
    "spoken_languages": [],
    "status": None,
    "tagline": None,
    "title": None,
    "video": None,
    "vote_average": None,
    "vote_count": None,
}
#: The fields of a list item (search, popular, discover, similar, …), in TMDB's order.
LIST_ITEM_FIELDS: Final = (
    "adult",
    "backdrop_path",
    "genre_ids",
    "id",
    "original_language",
    "original_title",
    "overview",
    "popularity",
    "poster_path",
    "release_date",
    "title",
    "video",
    "vote_average",
    "vote_count",
)

PAGED: Final = ("similar", "recommendations", "reviews", "lists")
#: The movie sub-resources served (``/3/movie/{id}/{part}`` and ``append_to_response``), each
#: with the TMDB shape of "nothing known" (``id`` added).
EMPTY_PARTS: Final[dict[str, dict[str, Any]]] = {
    "credits": {"cast": [], "crew": []},
    "keywords": {"keywords": []},
    "release_dates": {"results": []},
    "external_ids": {
        "imdb_id": None,
        "wikidata_id": None,
        "facebook_id": None,
        "instagram_id": None,
        "twitter_id": None,
    },
    "videos": {"results": []},
    "images": {"backdrops": [], "logos": [], "posters": []},
    "alternative_titles": {"titles": []},
    "translations": {"translations": []},
    "watch/providers": {"results": {}},
    # the names older clients still append (tmdbv3api's details() does): TMDB answers them
    "casts": {"cast": [], "crew": []},
    "trailers": {"quicktime": [], "youtube": []},
    "releases": {"countries": []},
    **{name: {"page": 1, "results": [], "total_pages": 0, "total_results": 0} for name in PAGED},
}
#: TMDB's limit on ``append_to_response`` (status_code 27 beyond it).
MAX_APPENDED: Final = 20


def details(record: Mapping[str, Any]) -> dict[str, Any]:
    """TMDB's details record: every TMDB field (``null`` where the record does not know it),
    nothing of ours."""
    body = {name: record.get(name, default) for name, default in DETAIL_FIELDS.items()}
    for name, default in DETAIL_FIELDS.items():
        if body[name] is None and default is not None:
            body[name] = default  # TMDB writes "" and [] where it knows nothing
    if body["original_title"] is None:
        body["original_title"] = body["title"]
    return body


def part(name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The sub-resource ``name`` of a record (``credits``, ``keywords``, …): what the record
    holds in TMDB's ``append_to_response`` form, else TMDB's empty shape."""
    held = record.get(name)
    if name == "casts" and held is None:
        held = record.get("credits")  # the legacy name of the same part
    if name == "keywords" and isinstance(held, list):  # a bare list, as TMDB's exports hold it
        held = {"keywords": held}
    shaped: dict[str, Any] = {"id": record.get("id"), **EMPTY_PARTS[name]}
    if name == "external_ids":
        shaped["imdb_id"] = record.get("imdb_id")
    if isinstance(held, dict):
        shaped.update({key: value for key, value in held.items() if key in shaped})
    if name in PAGED:
        del shaped["id"]  # TMDB's similar/recommendations pages carry no id
    return shaped


def list_item(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as an item of TMDB's paged lists (``genre_ids``, not ``genres``)."""
    body = details(record)
    item = {name: body.get(name) for name in LIST_ITEM_FIELDS}
    item["genre_ids"] = [g["id"] for g in body["genres"] if isinstance(g, dict) and "id" in g]
    return item


def page_of(items: list[dict[str, Any]], page: int, size: int = 20) -> dict[str, Any]:
    """TMDB's paged shape over ``items`` (TMDB serves at most 500 pages)."""
    total = len(items)
    return {
        "page": page,
        "results": items[(page - 1) * size : page * size],
        "total_pages": min(500, -(-total // size)),
        "total_results": total,
    }


# --- errors ------------------------------------------------------------------------------------

#: TMDB's status codes the proxy answers with: code → (HTTP status, TMDB's message).
TMDB_STATUS: Final[dict[int, tuple[int, str]]] = {
    5: (422, "Invalid parameters: Your request parameters are incorrect."),
    7: (401, "Invalid API key: You must be granted a valid key."),
    9: (503, "Service offline: This service is temporarily offline, try again later."),
    11: (500, "Internal error: Something went wrong, contact TMDB."),
    22: (400, "Invalid page: Pages start at 1 and max at 500. They are expected to be an integer."),
    24: (504, "Your request to the backend server timed out. Try again."),
    25: (429, "Your request count (#) is over the allowed limit of (40)."),
    27: (400, "Too many append to response objects: The maximum number of remote calls is 20."),
    34: (404, "The resource you requested could not be found."),
    42: (405, "This request method is not supported for this resource."),
    43: (502, "Couldn't connect to the backend server."),
    47: (400, "The input is not valid."),
}
#: The TMDB code of an HTTP status the proxy raises on a TMDB path.
CODE_OF_STATUS: Final[dict[int, int]] = {
    400: 47,
    401: 7,
    404: 34,
    405: 42,
    422: 5,
    429: 25,
    500: 11,
    502: 43,
    503: 9,
    504: 24,
}


def tmdb_error(code: int, detail: str | None = None) -> tuple[int, dict[str, Any]]:
    """TMDB's error body of a status code, and its HTTP status; ``detail`` (ours) follows TMDB's
    message where it says more."""
    status, message = TMDB_STATUS[code]
    if detail:
        message = f"{message} ({detail})"
    return status, {"success": False, "status_code": code, "status_message": message}
