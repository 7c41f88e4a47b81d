"""The one JSON parser of the API: hostile bodies are a 400, never a 500.

DRF's JSONParser hands the body to `json.load`, which recurses once per
nesting level: `[` x 1000 (2 KB) raised RecursionError, a 500 before login.
This parser turns that into ParseError (400), and refuses NaN/Infinity
(not JSON, and not storable in the numeric columns either).
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str | bytes) -> Any:
    """json.loads for untrusted text: ValueError for anything but plain JSON, deep nesting included."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            return loads(stream.read().decode(encoding))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
