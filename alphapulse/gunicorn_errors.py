"""gunicorn's own error answers, in the API's JSON shape.

gunicorn answers some requests before Django sees them: a request line over
`limit_request_line` (414), too many or too large headers (431), a request
line it cannot parse (400). Its built-in page for those is HTML; an API
client gets `{"detail": ...}` like every other error instead. gunicorn's
workers all call `gunicorn.util.write_error` for these answers, so replacing
that one function covers the sync and the threaded worker alike.
Installed by gunicorn.conf.py (read by `make run` and the live-server tests).
"""

from __future__ import annotations

import json
import socket

from gunicorn import util

_original_write_error = util.write_error


def json_error(status_int: int, reason: str, mesg: str) -> bytes:
    body = json.dumps({"detail": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    return head + body


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, json_error(status_int, reason, mesg))


def install() -> None:
    util.write_error = write_json_error
