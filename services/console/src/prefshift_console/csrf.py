"""Cross-site request forgery: only the console's own pages may post to it (docs/security.md).

Any web page can make a browser post a form to ``http://127.0.0.1:8104`` — with no API token
set, that started experiments and trainings. A post is accepted only when

- ``Sec-Fetch-Site``, if the browser sends it, is ``same-origin`` (or ``none``: typed by the
  user);
- ``Origin``, if sent, is this console's own origin (scheme, host and port of the request);
- the form's ``csrf_token`` equals the browser's ``prefshift_console_csrf`` cookie (HttpOnly,
  SameSite=Strict; set with the first page). Another site can neither read the cookie nor the
  page that carries the token, so it cannot send the pair (the double-submit pattern).

Anything else is a **403** in the error envelope.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response
from starlette.exceptions import HTTPException

CSRF_COOKIE = "prefshift_console_csrf"
CSRF_FIELD = "csrf_token"


def csrf_token(request: Request) -> str:
    """This browser's token: its cookie's, or a new one (:func:`keep_csrf_cookie` sets it)."""
    token = request.cookies.get(CSRF_COOKIE)
    if token and 32 <= len(token) <= 64:
        return token
    if not hasattr(request.state, "new_csrf_token"):
        request.state.new_csrf_token = secrets.token_urlsafe(32)
    new: str = request.state.new_csrf_token
    return new


def keep_csrf_cookie(request: Request, response: Response) -> None:
    """Give the browser the token a page was rendered with, when it was new."""
    new = getattr(request.state, "new_csrf_token", None)
    if new is not None:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict")


async def check_csrf(request: Request) -> None:
    """Refuse a post that did not come from one of this console's own pages."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise HTTPException(403, f"a cross-site post ({site}) is not accepted")
    origin = request.headers.get("origin")
    if origin is not None and (
        urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()
    ):
        raise HTTPException(403, "a post from another origin is not accepted")
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not isinstance(sent, str) or not secrets.compare_digest(sent, cookie):
        raise HTTPException(403, "the form's token is missing or stale: reload the page")
