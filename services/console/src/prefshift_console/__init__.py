"""prefshift console."""
