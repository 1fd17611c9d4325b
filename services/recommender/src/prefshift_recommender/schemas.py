"""Request and response models of the recommender's own routes (the cross-service ones are in
``prefshift_common.contracts``), and the OpenAPI examples."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from prefshift_common.contracts import Contract, DatasetName, Name, RecommenderInfo

ParameterValue = Annotated[float, Field(ge=0, le=2048)]


class TrainRequest(Contract):
    """Train one implementation on a dataset."""

    dataset: DatasetName | None = Field(
        default=None, description="Dataset to train on; default: the service's dataset."
    )
    params: dict[Annotated[str, Field(max_length=32, pattern=r"^[a-z_0-9]+$")], ParameterValue] = (
        Field(
            default_factory=dict,
            max_length=16,
            description=(
                "Hyperparameters to override (defaults in docs/recommender.md). als: factors, "
                "regularization, alpha, neutral, iterations, random_state; bpr: factors, "
                "learning_rate, regularization, iterations, min_rating, random_state, fold_in_*; "
                "item-knn: k, alpha, neutral, k1, b; popularity and random: none."
            ),
            examples=[{"factors": 64, "iterations": 20}],
        )
    )


class TrainAccepted(Contract):
    """A training was queued (or one of the same model is already running)."""

    recommender: Name
    dataset: DatasetName
    model_version: str = Field(description="The version the trained model will have.")
    status: str = Field(examples=["training"])
    links: dict[str, str] = Field(description="Where to watch progress.")


RECOMMENDATION_EXAMPLES: dict[str, Any] = {
    "cold_start": {
        "summary": "Cold start from a persona's history",
        "value": {
            "recommender": "als",
            "history": [
                {"tmdb_id": 603, "rating": 5.0},
                {"tmdb_id": 680, "rating": 4.5},
                {"tmdb_id": 13, "rating": 3.0},
            ],
            "n": 30,
            "exclude": [550],
        },
    },
    "dataset_user": {
        "summary": "A user of the dataset",
        "value": {"recommender": "item-knn", "dataset": "ml-latest-small", "user_id": 1, "n": 10},
    },
    "seeded_random": {
        "summary": "Reproducible random baseline",
        "value": {"recommender": "random", "history": [], "n": 10, "seed": 7},
    },
}

RECOMMENDATION_RESPONSE_EXAMPLE: dict[str, Any] = {
    "recommender": "als",
    "model_version": "als@ml-latest-small:3f1c2a9b7d10",
    "request_id": "6f1d0c2e9b8a4d7e8f0a1b2c3d4e5f60",
    "items": [
        {"tmdb_id": 27205, "movielens_id": 79132, "title": "Inception", "score": 0.8731},
        {"tmdb_id": 155, "movielens_id": 58559, "title": "The Dark Knight", "score": 0.8512},
    ],
    "short": False,
    "unknown_history": 0,
}

RECOMMENDERS_EXAMPLE: list[dict[str, Any]] = [
    RecommenderInfo(
        name="als",
        kind="collaborative",
        trained=True,
        model_version="als@ml-latest-small:3f1c2a9b7d10",
        dataset="ml-latest-small",
        status="ready",
        progress=1.0,
    ).model_dump(),
    RecommenderInfo(
        name="llm",
        kind="llm",
        trained=False,
        dataset="ml-latest-small",
        status="unavailable",
        detail="no LLM configured: set OPENAI_API_KEY",
    ).model_dump(),
]
