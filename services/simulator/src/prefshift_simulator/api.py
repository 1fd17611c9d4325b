"""Routes of the simulator service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
