"""The one way services make HTTP clients: explicit timeouts, the API token, the request id."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from prefshift_common.logging import REQUEST_ID_HEADER, current_request_id

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=10.0, pool=10.0)


async def _forward_request_id(request: httpx.Request) -> None:
    request_id = current_request_id()
    if request_id and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def create_http_client(
    base_url: str = "",
    *,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    api_token: SecretStr | None = None,
    max_connections: int = 100,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for talking to another service (or an upstream API)."""
    all_headers = {"user-agent": "prefshift/0.1", **(headers or {})}
    if api_token is not None:
        all_headers["authorization"] = f"Bearer {api_token.get_secret_value()}"
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        headers=all_headers,
        event_hooks={"request": [_forward_request_id]},
    )
