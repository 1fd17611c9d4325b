"""What every service's OpenAPI document says beyond its routes, so that the schema and the
server agree (issue 22, item 11; checked by schemathesis with every check):

- every operation that takes a body declares the **400** a body that is not JSON (or not
  UTF-8) gets, and the **413** of a body over the limit (``limits.BodyLimitMiddleware``);
- bearer auth is declared (``security``, the 401) only when the service is configured with a
  token: without one, no request is refused for want of it.

The 422 of every route is the error envelope: ``app.create_service_app`` declares it on every
router, which keeps FastAPI from declaring its own validation-error schema.
"""

from __future__ import annotations

from typing import Any

from prefshift_common.errors import ErrorEnvelope

_ENVELOPE_REF = {"$ref": f"#/components/schemas/{ErrorEnvelope.__name__}"}
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

#: statuses any body can be answered with before its route sees it
BODY_RESPONSES = {
    "400": "The body is not JSON, or not UTF-8.",
    "413": "The body is larger than the service's limit.",
}


def conform(document: dict[str, Any], *, token_required: bool) -> dict[str, Any]:
    """``document`` (a generated OpenAPI document) changed in place as the module says."""
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                for status, description in BODY_RESPONSES.items():
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {"application/json": {"schema": _ENVELOPE_REF}},
                        },
                    )
            if not token_required:
                operation.pop("security", None)
                responses.pop("401", None)
    if not token_required:
        components = document.get("components", {})
        components.pop("securitySchemes", None)
    return document
