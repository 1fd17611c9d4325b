"""The seed study's released runs as prefshift data: reading them (``released``), matching the
titles the LLM echoed (``matching``), turning a run into prefshift's tables (``runs``) and
importing a folder as one experiment (``importer``). See docs/replication.md."""
