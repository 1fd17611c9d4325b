"""Imported datasets (MovieLens format and the seed study's per-user files) and read access."""
