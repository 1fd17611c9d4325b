"""Examples in the services' OpenAPI documents, written for the demo data — ml-latest-small and
the embedded persona — so that "Try it out" in ``/docs`` works as it stands after ``make demo``.

Request bodies get their example by the name of their schema, parameters by their name; both
are added to the generated document by :func:`add_examples` (one place for every service).
``tests/common/test_api_docs.py`` checks that every request body has one, that each validates
against its model, and that the services accept them on ml-latest-small.
"""

from __future__ import annotations

from typing import Any

DEMO_DATASET = "ml-latest-small"
#: ml-latest-small users with enough rated movies for the protocol (232, 216 and 314 ratings).
DEMO_USERS = (1, 4, 6)
#: Toy Story, Jumanji, Grumpier Old Men, Heat (TMDB ids, all in ml-latest-small's links).
DEMO_MOVIES = (862, 8844, 15602, 949)
#: Some of user 1's real ratings in ml-latest-small: Seven, The Usual Suspects, Braveheart.
DEMO_HISTORY = (
    {"tmdb_id": 807, "rating": 5.0},
    {"tmdb_id": 629, "rating": 5.0},
    {"tmdb_id": 197, "rating": 4.0},
)
#: A small protocol, quick on the embedded persona.
DEMO_PROTOCOL: dict[str, Any] = {
    "arms": ["popularity", "random", "control"],
    "backend": "embedded",
    "pages": 2,
    "page_size": 10,
    "test_size": 20,
    "persona_size": 30,
}

#: schema name → (summary, example value)
BODY_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "SimulationRequest": (
        f"User {DEMO_USERS[0]} of {DEMO_DATASET}, two small pages per arm",
        {"dataset": DEMO_DATASET, "seed": 0, **DEMO_PROTOCOL},
    ),
    "ExperimentRequest": (
        f"Three users of {DEMO_DATASET}",
        {
            "name": "demo",
            "dataset": DEMO_DATASET,
            "seed": 0,
            "cohort": {"kind": "users", "user_ids": list(DEMO_USERS)},
            **DEMO_PROTOCOL,
        },
    ),
    "TrainRequest": (f"ALS on {DEMO_DATASET}", {"dataset": DEMO_DATASET}),
    "RatingsRequest": (
        f"The embedded persona of user {DEMO_USERS[0]} rates two movies",
        {
            "persona": {
                "user_id": DEMO_USERS[0],
                "dataset": DEMO_DATASET,
                "history": list(DEMO_HISTORY),
                "experiences": [
                    {"tmdb_id": DEMO_MOVIES[1], "rating": 3.5, "feeling": "Fun, if a bit loud."}
                ],
            },
            "items": [DEMO_MOVIES[0], DEMO_MOVIES[3]],
            "backend": "embedded",
            "seed": 0,
            "occasion": 1,
        },
    ),
    "MovieBatchRequest": ("Four movies of ml-latest-small", {"tmdb_ids": list(DEMO_MOVIES)}),
}

#: parameter name → example
PARAMETER_EXAMPLES: dict[str, Any] = {
    "user_id": DEMO_USERS[0],
    "run_id": 1,
    "experiment_id": 1,
    "dataset": DEMO_DATASET,
    "tmdb_id": DEMO_MOVIES[0],
    "name": "als",
    "query": "Toy Story",
    "year": 1995,
    "primary_release_year": 1995,
    "part": "credits",
    "external_id": "tt0114709",  # Toy Story (862) in MovieLens links.csv
}


def add_examples(document: dict[str, Any]) -> dict[str, Any]:
    """Put the demo examples into an OpenAPI document (in place; returned for chaining).

    An example the route already declares is kept."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                name = parameter.get("name")
                if name in PARAMETER_EXAMPLES and "example" not in parameter:
                    parameter["example"] = PARAMETER_EXAMPLES[name]
            content = operation.get("requestBody", {}).get("content", {})
            media = content.get("application/json")
            if media is None or "examples" in media or "example" in media:
                continue
            schema = media.get("schema", {})
            refs = [schema.get("$ref", "")] + [s.get("$ref", "") for s in schema.get("anyOf", [])]
            for ref in refs:
                name = ref.rsplit("/", 1)[-1]
                if name in BODY_EXAMPLES:
                    summary, value = BODY_EXAMPLES[name]
                    media["examples"] = {"demo": {"summary": summary, "value": value}}
                    break
    return document
