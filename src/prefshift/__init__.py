"""The `prefshift` command: the entry point for people."""
