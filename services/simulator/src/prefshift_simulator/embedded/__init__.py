"""The embedded persona: a deterministic, seedable preference model (no network, no key)."""
