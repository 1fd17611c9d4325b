"""Fake upstreams (OpenAI-compatible LLM, TMDB) and a loopback server runner for tests."""
