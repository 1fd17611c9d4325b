"""The structured-output ladder and how an endpoint's refusal of a format is recognised.

Rung by rung, best first: ``json_schema`` (OpenAI structured outputs, strict), ``json_object``
with the schema attached (llama.cpp, vLLM and Ollama constrain decoding with it), then ``lines``
(no ``response_format`` at all; the prompt says how to answer). An endpoint refuses a rung by
what it says about ``response_format``, whatever the status: OpenAI-compatible servers answer
400, 422 or even 500 ("Input should be 'text' or 'json_object'").
"""

from __future__ import annotations

from typing import Any, Literal

Format = Literal["json_schema", "json_object", "lines"]

#: The ladder, best first.
LADDER: tuple[Format, ...] = ("json_schema", "json_object", "lines")

#: Words of a refusal that concern the response format (checked in lower case).
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "response format", "schema")
#: Statuses an endpoint uses to refuse a request it cannot parse or serve as asked.
_REFUSAL_STATUSES = frozenset({400, 404, 415, 422, 500, 501})


def next_rung(current: Format) -> Format | None:
    """The rung below ``current``, or None at the bottom."""
    index = LADDER.index(current)
    return LADDER[index + 1] if index + 1 < len(LADDER) else None


def refuses_format(status: int | None, message: str, used: Format) -> bool:
    """Whether an error answer says the endpoint cannot do the response format ``used``."""
    if used == "lines" or status not in _REFUSAL_STATUSES:
        return False
    lowered = message.lower()
    return any(word in lowered for word in _FORMAT_WORDS)


def response_format(
    used: Format, name: str, schema: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The ``response_format`` request parameter of a rung (None: send none)."""
    if used == "lines" or schema is None:
        return None
    if used == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": True, "schema": schema},
        }
    # llama.cpp's server and vLLM read "schema" here; Ollama ignores it and answers JSON.
    return {"type": "json_object", "schema": schema}
