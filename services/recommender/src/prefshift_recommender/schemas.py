"""Request and response models of the recommender's own routes (the cross-service ones are in
``prefshift_common.contracts``), and the OpenAPI examples."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from prefshift_common.contracts import (
    Contract,
    DatasetName,
    Name,
    RecommenderInfo,
    StrictContract,
)

PositiveInt = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0.0, le=1000.0)]


class TrainParams(StrictContract):
    """Hyperparameters to override; each implementation accepts its own (defaults and meaning
    in docs/recommender.md). A parameter another implementation owns is refused with 422, and
    so is a value of another type (``"factors": true``)."""

    factors: (
        Annotated[PositiveInt, Field(le=256, description="als, bpr: latent factors.")] | None
    ) = None
    iterations: Annotated[PositiveInt, Field(le=100, description="als, bpr: epochs.")] | None = None
    regularization: Annotated[NonNegative, Field(description="als, bpr: L2 weight.")] | None = None
    alpha: Annotated[NonNegative, Field(description="als, item-knn: confidence scale.")] | None = (
        None
    )
    neutral: (
        Annotated[
            float,
            Field(ge=0.0, le=5.0, description="als, item-knn: rating that adds no confidence."),
        ]
        | None
    ) = None
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0, description="bpr: SGD step.")] | None = (
        None
    )
    min_rating: (
        Annotated[float, Field(ge=0.5, le=5.0, description="bpr: lowest rating counted as liked.")]
        | None
    ) = None
    random_state: (
        Annotated[int, Field(ge=0, le=2**31 - 1, description="als, bpr: seed.")] | None
    ) = None
    fold_in_steps: (
        Annotated[PositiveInt, Field(le=200, description="bpr: cold-start steps.")] | None
    ) = None
    fold_in_negatives: (
        Annotated[
            PositiveInt, Field(le=10_000, description="bpr: sampled negatives at cold start.")
        ]
        | None
    ) = None
    fold_in_rate: (
        Annotated[float, Field(gt=0.0, le=10.0, description="bpr: cold-start step.")] | None
    ) = None
    fold_in_regularization: (
        Annotated[NonNegative, Field(description="bpr: cold-start L2 weight.")] | None
    ) = None
    k: (
        Annotated[PositiveInt, Field(le=1000, description="item-knn: neighbours per movie.")] | None
    ) = None
    k1: Annotated[NonNegative, Field(description="item-knn: BM25 saturation.")] | None = None
    b: Annotated[float, Field(ge=0.0, le=1.0, description="item-knn: BM25 length norm.")] | None = (
        None
    )

    def given(self) -> dict[str, float]:
        """The parameters actually set."""
        return {k: v for k, v in self.model_dump(exclude_none=True).items()}


class TrainRequest(StrictContract):
    """Train one implementation on a dataset (strict: ``"activate": 0`` is no boolean)."""

    dataset: DatasetName | None = Field(
        default=None, description="Dataset to train on; default: the service's dataset."
    )
    activate: bool | None = Field(
        default=None,
        description="Serve the trained model from now on (and after restarts). Default: when "
        "no parameter is set or no model serves yet; otherwise the model is kept as a candidate "
        "version beside the active one (train again with `activate: true` to serve it).",
    )
    params: TrainParams = Field(
        default_factory=TrainParams, examples=[{"factors": 64, "iterations": 20}]
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
