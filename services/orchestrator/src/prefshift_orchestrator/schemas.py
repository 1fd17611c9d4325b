"""Request and response models of the orchestrator's API. Every field is bounded."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from prefshift_common.contracts import (
    Backend,
    DatasetName,
    Name,
    NoNul,
    Seed,
    ShortText,
    StrictContract,
)
from prefshift_common.errors import ServiceError
from prefshift_orchestrator.arm_urls import ArmUrlRefused, parse_arm_url
from prefshift_orchestrator.cohorts import CohortRule

CONTROL = "control"
BASELINE = "baseline"
#: The arm of the ``rerate`` design: it shows nothing and re-rates the test movies beside
#: predicted ratings (docs/orchestrator.md, "Re-rating designs").
RERATE = "rerate"
#: Names no arm of a ``shift`` protocol may take (``control`` is the arm that shows nothing:
#: no recommender, URL, recorded pages or shown predictions may take its name).
RESERVED_ARM_NAMES = frozenset({BASELINE, RERATE})
CONTROL_TAKES_NONE = ("recommender", "url", "recorded", "shown_prediction")
#: The experiment designs: ``shift`` (the protocol of pages), ``rerate`` (Cosley et al., CHI
#: 2003: re-rating beside shown predictions), ``retest`` (Amatriain et al., UMAP 2009:
#: re-rating with no intervention).
Design = Literal["shift", "rerate", "retest"]
DESIGNS: tuple[str, ...] = ("shift", "rerate", "retest")
DEFAULT_ARMS = ("llm", "llm-persuasive", "als", "random", CONTROL)
LLM_IMPLEMENTATIONS = frozenset({"llm", "llm-persuasive"})

Url = Annotated[
    str,
    Field(
        min_length=8,
        max_length=500,
        pattern=r"^https?://[^\s]+$",
        examples=["http://127.0.0.1:9000"],
    ),
    NoNul,
]


RunIdRef = Annotated[int, Field(ge=1, le=2_147_483_647)]


class RecordedPages(StrictContract):
    """Where a ``recorded`` arm's pages come from: an arm of an earlier run of the same user —
    the run itself (``run``) or the user's run in an experiment (``experiment``, e.g. the
    import of the seed study's released runs). ``arm`` names the arm in that run (default: the
    recorded arm's own name)."""

    run: RunIdRef | None = Field(default=None, description="A run of the same user.")
    experiment: RunIdRef | None = Field(
        default=None, description="An experiment holding a run of the same user."
    )
    arm: Name | None = Field(default=None, description="The arm in the recorded run.")

    @model_validator(mode="after")
    def _one_source(self) -> RecordedPages:
        if (self.run is None) == (self.experiment is None):
            raise ValueError("give exactly one of 'run' and 'experiment'")
        return self

    def source(self) -> tuple[str, int]:
        return ("run", self.run) if self.run is not None else ("experiment", self.experiment or 0)


class ShownPredictionSpec(StrictContract):
    """Show every movie of the arm's pages with a predicted rating in stars: the page's rank
    mapped onto the user's own rating distribution (docs/orchestrator.md, "Shown
    predictions"), moved by ``offset`` stars and clipped to 0.5–5."""

    offset: float = Field(
        default=0.0,
        ge=-4.5,
        le=4.5,
        description="Stars added to every predicted rating before it is shown (δ).",
    )


def shown_arm_name(name: str, offset: float) -> str:
    """The name of a shown-prediction arm named after its offset: ``als_shown`` (0),
    ``als_up1`` (+1), ``als_down0.5`` (−0.5)."""
    if offset == 0:
        return f"{name}_shown"
    return f"{name}_{'up' if offset > 0 else 'down'}{abs(offset):g}"


class ArmSpec(StrictContract):
    """An arm of the experiment: a recommender implementation at a recommender service, or
    the recorded pages of an earlier run.

    ``name`` labels the arm in results; ``recommender`` is the implementation asked for
    (default: the name); ``url`` is the service speaking the recommender contract (default:
    ``PREFSHIFT_RECOMMENDER_URL`` or the arm's entry in ``PREFSHIFT_ORCHESTRATOR_ARMS``).
    The name ``control`` is reserved for the arm that sees nothing and only re-rates (a spec
    named so takes no ``recommender``, ``url``, ``recorded`` or ``shown_prediction``), and
    ``baseline`` for the ratings before any page.

    ``recorded`` instead replays an arm of an earlier run of the same user: the persona is
    shown exactly that run's pages, in the same order, and the run takes that run's test and
    persona movies (see docs/replication.md). Example: ``{"name": "llm", "recorded":
    {"experiment": 1, "arm": "llm"}}``.

    ``shown_prediction`` shows every movie of the arm's pages with a predicted rating (moved by
    its ``offset``); the persona also rates each such page once without them, for the shift
    on the shown movies. Without ``recommender``, the arm is named after its offset
    (``{"name": "als", "shown_prediction": {"offset": 1}}`` is arm ``als_up1`` of recommender
    ``als``), so arms of one recommender with different offsets can share a run.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"name": "mine", "url": "http://127.0.0.1:9000", "recommender": "v2"},
                {"name": "llm", "recorded": {"experiment": 1, "arm": "llm"}},
                {"name": "als", "shown_prediction": {"offset": 1.0}},
            ]
        },
    )

    name: Name
    recommender: Name | None = None
    url: Url | None = None
    recorded: RecordedPages | None = Field(
        default=None, description="Replay an arm of an earlier run of the same user."
    )
    shown_prediction: ShownPredictionSpec | None = Field(
        default=None,
        description="Show each recommended movie with a predicted rating (optionally moved by "
        "an offset in stars).",
    )

    @model_validator(mode="after")
    def _recorded_alone(self) -> ArmSpec:
        if self.name == CONTROL:
            given = [key for key in CONTROL_TAKES_NONE if getattr(self, key) is not None]
            if given:
                raise ValueError(
                    "'control' is the arm that shows nothing and only re-rates (every net shift "
                    f"is measured against it), so it takes no {', '.join(given)}: give a "
                    "recommender arm another name"
                )
        if self.recorded is not None and (self.url is not None or self.recommender is not None):
            raise ValueError("a recorded arm has no 'url' or 'recommender'")
        return self

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == BASELINE:
            raise ValueError("'baseline' is the name of the baseline ratings, not an arm")
        if value == RERATE:
            raise ValueError('\'rerate\' is the arm of the rerate design ("design": "rerate")')
        return value

    def resolved(self) -> ArmSpec:
        """The spec as the run uses it: a shown-prediction arm without ``recommender`` is named
        after its offset and asks for the recommender of its name."""
        if self.shown_prediction is None or self.recommender is not None or self.recorded:
            return self
        name = shown_arm_name(self.name, self.shown_prediction.offset)
        return self.model_copy(update={"name": name, "recommender": self.name})

    @field_validator("url")
    @classmethod
    def _a_base_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_arm_url(value)
            except ArmUrlRefused as refused:
                raise ValueError(refused.detail) from None
        return value


class Protocol(StrictContract):
    """The protocol's parameters (docs/architecture.md, "The protocol"); each can be set per
    request."""

    test_size: int = Field(default=30, ge=1, le=200, description="Held-out test movies.")
    persona_size: int = Field(default=40, ge=1, le=1000, description="Persona history movies.")
    pages: int = Field(default=4, ge=1, le=20, description="Pages of recommendations per arm.")
    page_size: int = Field(default=30, ge=1, le=100, description="Movies per page.")
    arms: list[ArmSpec | Name] | None = Field(
        default=None,
        min_length=1,  # a protocol of no arms would measure nothing but the baseline
        max_length=16,
        description="Arms by name or spec; default: llm, llm-persuasive, als, random, control.",
        examples=[["als", "random", "control"]],
    )
    backend: Backend | None = Field(
        default=None, description="Simulator backend; default: the simulator's default."
    )
    persona_model: Name | None = Field(
        default=None,
        description="Named parameter set of the embedded persona (simulator GET /backends); "
        "default: the simulator's.",
    )
    design: Design = Field(
        default="shift",
        description="shift: the protocol of pages (default); rerate: the persona re-rates the "
        "test movies beside predicted ratings, each under a seeded condition (none, accurate, "
        "+delta, -delta; Cosley et al., CHI 2003); retest: it re-rates them with no "
        "intervention (Amatriain et al., UMAP 2009). See docs/orchestrator.md.",
    )
    delta: float | None = Field(
        default=None,
        gt=0.0,
        le=4.5,
        description="rerate: the stars a perturbed prediction is moved by (default 1).",
    )

    @model_validator(mode="after")
    def _design(self) -> Protocol:
        if self.design == "shift":
            if self.delta is not None:
                raise ValueError("'delta' belongs to the rerate design")
            return self
        if self.delta is not None and self.design != "rerate":
            raise ValueError("'delta' belongs to the rerate design")
        if self.arms is not None:
            how = "beside shown predictions" if self.design == "rerate" else "with nothing shown"
            raise ValueError(
                f"a {self.design} experiment has no arms: it re-rates the test movies {how}"
            )
        if "pages" not in self.model_fields_set:
            self.pages = 1  # one re-rating session after the first
        elif self.design == "rerate" and self.pages != 1:
            raise ValueError("a rerate experiment has one re-rating session (pages: 1)")
        return self

    @model_validator(mode="after")
    def _distinct_arm_names(self) -> Protocol:
        if self.arms is not None:
            names = [arm.name for arm in self.arm_specs()]
            if len(set(names)) != len(names):
                raise ValueError("arm names must be distinct")
            if BASELINE in names:
                raise ValueError("'baseline' is not an arm")
            sources = {
                arm.recorded.source()
                for arm in self.arms
                if not isinstance(arm, str) and arm.recorded is not None
            }
            if len(sources) > 1:
                # The run takes the recorded run's test and persona movies: there is one.
                raise ValueError("every recorded arm of a protocol replays the same run")
        return self

    def recorded_source(self) -> RecordedPages | None:
        """The recorded pages the run replays (its split comes from that run), if any."""
        for arm in self.arm_specs():
            if arm.recorded is not None:
                return arm.recorded
        return None

    def arm_specs(self) -> list[ArmSpec]:
        """The arms as the run uses them (shown-prediction arms named after their offsets); a
        ``rerate`` design has its one arm, ``retest`` only ``control``."""
        if self.design == "rerate":
            return [ArmSpec.model_construct(name=RERATE)]
        if self.design == "retest":
            return [ArmSpec(name=CONTROL)]
        arms = self.arms if self.arms is not None else list(DEFAULT_ARMS)
        return [(ArmSpec(name=arm) if isinstance(arm, str) else arm).resolved() for arm in arms]

    @property
    def rerate_delta(self) -> float:
        return self.delta if self.delta is not None else 1.0


class SimulationRequest(Protocol):
    """``POST /simulate/{user_id}``: the dataset, the protocol and the seed (all optional)."""

    dataset: DatasetName | None = Field(
        default=None, description="Imported dataset of the user; default: the only one imported."
    )
    seed: Seed = 0


class RunLinks(BaseModel):
    self: str
    ratings: str
    shift: str


class RunError(BaseModel):
    """Why a run failed (stored in ``runs.error``): the error envelope's code, its status and
    detail."""

    error: str
    status: int
    detail: str


def error_record(error: ServiceError) -> dict[str, Any]:
    """The stored record of a run refused or failed by a typed error."""
    return RunError(error=error.code, status=error.status_code, detail=error.detail).model_dump()


def crash_record(exc: Exception) -> dict[str, Any]:
    """The stored record of a run that failed on an unexpected exception."""
    detail = f"unexpected {type(exc).__name__}: {exc}"
    return RunError(error="internal_error", status=500, detail=detail).model_dump()


class RunOut(BaseModel):
    """A run: its parameters, state and progress."""

    run_id: int
    user_id: int
    dataset: str
    seed: int
    status: Literal["queued", "running", "completed", "failed", "cancelled"]
    progress: float = Field(ge=0.0, le=1.0)
    params: dict[str, Any]
    arms: list[dict[str, Any]] | None
    messages: list[str]
    provenance: dict[str, Any] | None = Field(
        default=None,
        description="Where the run came from when prefshift did not execute it (an import of "
        "the seed study's released runs: source, files' sha256, persona model); else null.",
    )
    rated_by: list[dict[str, Any]] | None = Field(
        default=None,
        description="Who rated the run's ratings, as the simulator answered: backend, LLM model, "
        "the embedded persona's parameter set and the dataset its collaborative statistics "
        "came from (population), each distinct answer once; the run's "
        "params may leave them to the simulator's defaults, which can change. Null until the "
        "run completes, and for runs stored before it was recorded.",
    )
    error: RunError | None
    attempts: int
    claimed_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    pages_done: int = Field(description="Completed pages (the baseline counts as one).")
    pages_total: int
    links: RunLinks


class ArmShiftSummary(BaseModel):
    arm: str
    page: int
    shift: float | None
    net_shift: float | None


class UserRunOut(RunOut):
    """The latest run of a user, with the shift of each arm at its last page."""

    shift_summary: list[ArmShiftSummary]


class RatingOut(BaseModel):
    arm: str
    page: int
    phase: Literal["test", "experience", "blind"] = Field(
        description="test: a test movie; experience: a recommendation; blind: a "
        "shown-prediction arm's recommendation rated with no prediction shown."
    )
    tmdb_id: int
    rating: float
    feeling: str
    shown: float | None = Field(
        default=None, description="The predicted rating shown beside the movie (stars), if any."
    )
    condition: str | None = Field(
        default=None, description="rerate design: none, accurate, up or down."
    )


class RatingsOut(BaseModel):
    run_id: int
    ratings: list[RatingOut]


class ExperimentRequest(Protocol):
    """``POST /experiments``: a cohort (a list of users or a rule), the protocol and the seed."""

    name: ShortText | None = Field(default=None, max_length=64)
    dataset: DatasetName | None = None
    seed: Seed = 0
    cohort: CohortRule = Field(
        description="Who takes part: a list of users, a seeded sample, or the seed study's rule."
    )

    @field_validator("cohort", mode="before")
    @classmethod
    def _kind_defaults_to_users(cls, value: Any) -> Any:
        # Each rule's ``kind`` has a default in the schema, so a cohort without one is valid:
        # it is the list of users (the discriminator alone would refuse it).
        if isinstance(value, dict) and "kind" not in value:
            return {**value, "kind": "users"}
        return value


class ExperimentProgress(BaseModel):
    runs: int
    queued: int
    running: int
    completed: int
    failed: int
    cancelled: int
    progress: float = Field(ge=0.0, le=1.0)
    failure_reasons: dict[str, int] = Field(
        default_factory=dict, description="Failed runs per reason (status and error code)."
    )


class ExperimentStatusOut(BaseModel):
    """An experiment's status and progress without its runs: what a progress poll needs."""

    experiment_id: int
    status: Literal["running", "completed", "completed_with_failures", "failed"]
    progress: ExperimentProgress


class ExperimentRunOut(BaseModel):
    run_id: int
    user_id: int
    archetype: str | None
    status: str
    progress: float


class ExperimentOut(BaseModel):
    experiment_id: int
    name: str | None
    dataset: str
    seed: int
    params: dict[str, Any]
    cohort: dict[str, Any]
    messages: list[str]
    provenance: dict[str, Any] | None = Field(
        default=None,
        description="Where the experiment came from when it was imported (an import of "
        "the seed study's released runs: source, folder sha256, persona model); else null.",
    )
    status: Literal["running", "completed", "completed_with_failures", "failed"]
    created_at: datetime
    progress: ExperimentProgress
    runs: list[ExperimentRunOut]
    links: dict[str, str]
