"""The llm backend: persona prompts to any OpenAI-compatible endpoint."""
