"""The LLM client shared by the simulator and the recommender (see :mod:`.client`).

The client (and the OpenAI library under it) is imported when first named, so that importing
:mod:`.models` (the migrations do, to register the LLM call table) does not import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefshift_common.llm.formats import LADDER, Format
from prefshift_common.llm.settings import LlmSettings

if TYPE_CHECKING:
    from prefshift_common.llm.client import Answer, ChatTask, LlmClient, Messages, Verdict

__all__ = [
    "LADDER",
    "Answer",
    "ChatTask",
    "Format",
    "LlmClient",
    "LlmSettings",
    "Messages",
    "Verdict",
]

_FROM_CLIENT = ("Answer", "ChatTask", "LlmClient", "Messages", "Verdict")


def __getattr__(name: str) -> Any:
    if name in _FROM_CLIENT:
        from prefshift_common.llm import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
