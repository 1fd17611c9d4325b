"""Who is calling: the API token a browser signed in with, held on the server.

The browser gets an opaque, HttpOnly, SameSite=Strict session cookie; the token itself never
goes into a URL, a page or the page's JavaScript. With ``PREFSHIFT_API_TOKEN`` set, the console
asks for that token before it shows anything; without it, it asks only when a service answers
401 (the services were given a token the console was not), and checks what is typed against the
orchestrator.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

COOKIE = "prefshift_console_session"
#: Sign-ins kept at most (the oldest goes first).
MAX_SESSIONS = 1000


class SignInRequired(Exception):
    """The page needs a token the browser has not given."""


@dataclass(frozen=True)
class Caller:
    """The token to call the services with, if any."""

    token: str | None


class Sessions:
    """Signed-in browsers: session id → (token, expiry), in memory (a restart signs out)."""

    def __init__(self, lifetime_seconds: float) -> None:
        self.lifetime = lifetime_seconds
        self._tokens: dict[str, tuple[str, float]] = {}

    def open(self, token: str) -> str:
        while len(self._tokens) >= MAX_SESSIONS:
            self._tokens.pop(next(iter(self._tokens)))
        session_id = secrets.token_urlsafe(32)
        self._tokens[session_id] = (token, time.monotonic() + self.lifetime)
        return session_id

    def token(self, session_id: str | None) -> str | None:
        if not session_id or session_id not in self._tokens:
            return None
        token, expires = self._tokens[session_id]
        if time.monotonic() > expires:
            del self._tokens[session_id]
            return None
        return token

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._tokens.pop(session_id, None)


def get_caller(request: Request) -> Caller:
    """The caller of this request; refuses (sign in first) when the console has a token."""
    sessions: Sessions = request.app.state.sessions
    token = sessions.token(request.cookies.get(COOKIE))
    if token is None and request.app.state.settings.api_token is not None:
        raise SignInRequired()
    return Caller(token)


CallerDep = Annotated[Caller, Depends(get_caller)]


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path on this console, never another site."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
