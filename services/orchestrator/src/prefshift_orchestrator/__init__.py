"""prefshift orchestrator service."""
