"""prefshift simulator service."""
