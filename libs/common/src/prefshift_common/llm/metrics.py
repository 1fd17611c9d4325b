"""What a service's LLM client counts for ``/metrics`` (docs/operations.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

#: An LLM call takes from a fraction of a second (a short answer) to minutes (a slow local model).
CALL_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300)


class LlmMetrics:
    """The LLM client's counters, in the registry of the app that uses the client."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()  # a client built outside an app: not exposed
        self.calls = Counter(
            "prefshift_llm_calls_total",
            "LLM calls by outcome: valid, invalid (answered, failed validation), error, "
            "unsupported (the response format was refused), replayed (answered from the record).",
            ["outcome"],
            registry=registry,
        )
        self.tokens = Counter(
            "prefshift_llm_tokens_total",
            "Tokens the LLM endpoint reported, by kind (prompt, completion).",
            ["kind"],
            registry=registry,
        )
        self.call_seconds = Histogram(
            "prefshift_llm_call_duration_seconds",
            "Duration of the LLM endpoint's answer to one call (replays excluded).",
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        self.rate_limit_waits = Counter(
            "prefshift_llm_rate_limit_waits_total",
            "Calls that waited for a slot of the shared request and token budget.",
            registry=registry,
        )
        self.rate_limit_wait_seconds = Counter(
            "prefshift_llm_rate_limit_wait_seconds_total",
            "Seconds calls waited for the shared request and token budget.",
            registry=registry,
        )
        self.throttled = Counter(
            "prefshift_llm_throttled_total",
            "429 (rate limited) answers from the LLM endpoint.",
            registry=registry,
        )
