"""prefshift tmdb-proxy service."""
