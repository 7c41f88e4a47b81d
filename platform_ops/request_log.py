"""Structured request logs: one JSON line per request (structlog).

Fields: event, timestamp (UTC ISO), level, request_id, method, route (the
resolver pattern), status, duration_ms, tenant_id, user_id. The request id is
the client's `X-Request-ID` when it is a short token, else a new one; it is
echoed in the response's `X-Request-ID`. REQUEST_LOG=false turns the lines off.

The line is rendered and written after the response has gone to the client
(platform_ops.middleware hands write_line to the response's close, which the
WSGI server calls once the body is sent): structlog's processors and the JSON
rendering cost ~50-120 us per request on the bench machine, and none of it
needs to delay the answer (docs/benchmarks/README.md, "Where the time goes").
"""

from __future__ import annotations

import re
import sys
import uuid

import structlog

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

structlog.configure(
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.JSONRenderer(sort_keys=True),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(20),  # INFO
    logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
    # Not cached: structlog.testing.capture_logs() must see every line.
    cache_logger_on_first_use=False,
)

logger = structlog.get_logger("alphapulse.request")


def request_id_from(header: str | None) -> str:
    if header and SAFE_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


def write_line(**fields: object) -> None:
    """One request's JSON line (the fields of the module docstring)."""
    logger.info("request", **fields)
