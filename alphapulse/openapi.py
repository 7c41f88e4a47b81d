"""The OpenAPI document tells every answer, errors included (drf-spectacular postprocessing hook).

The views declare their successes; the failures come from layers every route
shares (the tenant middleware, the throttles, the parsers, the exception
handler in alphapulse/exceptions.py), so they are added here, by what an
operation is: a route under /api/auth/ (public), one with a body, one with an
`{id}`, a write. A generic rule, so a new endpoint is documented the day it
lands; a response a view declares itself (the bulk route's 400) is kept.
"""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "description": "Every refusal but a validation error: what went wrong and what to do.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERROR = {
    "type": "object",
    "description": "Field name (or `non_field_errors`) -> messages; a body that is not JSON gives "
    '`{"detail": "JSON parse error - ..."}`.',
    "additionalProperties": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
}
METHODS = {"get", "put", "patch", "post", "delete", "head", "options", "trace"}
WRITES = {"put", "patch", "post", "delete"}
UNDOCUMENTED_PATHS = ("/api/schema/", "/api/docs/")


def _answers(path: str, method: str, operation: dict[str, Any]) -> dict[str, tuple[str, str]]:
    public = path.startswith("/api/auth/token/")
    has_body = "requestBody" in operation
    has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
    answers: dict[str, tuple[str, str]] = {}
    if has_body or has_query:
        answers["400"] = ("ValidationError", "Invalid input (body fields, filters or cursor); nothing was written.")
    answers["401"] = (
        ("Error", "Wrong tenant, username or password, or a rejected refresh token (the same answer for each).")
        if public
        else ("Error", "No, malformed, invalid or expired bearer token.")
    )
    if not public:
        answers["403"] = ("Error", "The tenant is suspended, the user inactive, or the action not allowed.")
    if "{" in path:
        answers["404"] = ("Error", "No such object in the caller's tenant (another tenant's id included).")
    if method in WRITES and not public:
        answers["409"] = ("Error", "The object's state does not allow the change (e.g. an order that is not new).")
    if method == "post" and not public:
        answers["422"] = ("Error", "This Idempotency-Key was used with another request in the last 24 hours.")
    if has_body:
        answers["413"] = ("Error", "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE (the limit is named).")
        answers["415"] = ("Error", "The body is not application/json.")
    answers["429"] = ("Error", "Rate limit reached: retry after Retry-After seconds (RateLimit-* headers).")
    answers["503"] = ("Error", "The database or the rate-limit store is unavailable: retry after Retry-After.")
    return answers


def document_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("ValidationError", VALIDATION_ERROR)
    for path, item in result.get("paths", {}).items():
        if path.startswith(UNDOCUMENTED_PATHS):
            continue
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code, (schema, description) in _answers(path, method, operation).items():
                responses.setdefault(
                    code,
                    {
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
                        "description": description,
                    },
                )
    return result
