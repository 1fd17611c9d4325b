"""prefshift recommender service."""
