"""The LLM client shared by the simulator and the recommender (see :mod:`.client`)."""

from prefshift_common.llm.client import Answer, ChatTask, LlmClient, Messages, Verdict
from prefshift_common.llm.formats import LADDER, Format
from prefshift_common.llm.settings import LlmSettings

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
