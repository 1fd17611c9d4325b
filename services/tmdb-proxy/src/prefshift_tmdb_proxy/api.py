"""Routes of the tmdb-proxy service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
