"""Routes of the orchestrator service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
