"""PostgreSQL text cannot hold NUL nor a lone surrogate, and ``jsonb`` rewrites numbers:
the escaping both the write side and the read side use, so that every string and number
reads back as it came."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

__all__ = ["escape", "escape_or_none", "from_jsonb", "json_string", "to_jsonb", "unescape"]

_ESC = "\x10"
_NEEDS_ESCAPE = re.compile("[\x00\x10\ud800-\udfff]")
_ESCAPED = re.compile("\x10(0|1|u[0-9a-f]{4})")
# A jsonb string starting with this stands for the float after it (only -0.0 needs it).
_FLOAT_TAG = _ESC + "f"


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\x00":
        return _ESC + "0"
    if char == _ESC:
        return _ESC + "1"
    return f"{_ESC}u{ord(char):04x}"  # a lone surrogate


def _unescape_one(match: re.Match[str]) -> str:
    code = match.group(1)
    if code == "0":
        return "\x00"
    if code == "1":
        return _ESC
    return chr(int(code[1:], 16))


def escape(text: str) -> str:
    """*text* as PostgreSQL can store it: unchanged unless it holds NUL, DLE or a lone surrogate.

    NUL becomes DLE ``0``, DLE itself DLE ``1``, a lone surrogate DLE ``u`` and
    four hex digits. So a stored string holds DLE only if it was escaped, and
    `unescape` gives the original back.
    """
    if text.isascii():  # the usual case, about three times faster than the search below
        if "\x00" not in text and "\x10" not in text:
            return text
    elif _NEEDS_ESCAPE.search(text) is None:
        return text
    return _NEEDS_ESCAPE.sub(_escape_one, text)


def unescape(text: str) -> str:
    """The inverse of `escape`."""
    if _ESC not in text:
        return text
    return _ESCAPED.sub(_unescape_one, text)


def escape_or_none(text: str | None) -> str | None:
    return None if text is None else escape(text)


def _json_string_raw(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def json_string(text: str) -> str:
    return _json_string_raw(escape(text))


def _json_float(number: float) -> str:
    if number == 0 and math.copysign(1.0, number) < 0:
        return _json_string_raw(_FLOAT_TAG + "-0.0")  # numeric has no negative zero
    # Positional notation with a fractional part: jsonb keeps the digits as written, so the
    # value reads back as this very float, and as a float (``1e16`` would come back an int).
    text = format(Decimal(repr(number)), "f")
    return text if "." in text else text + ".0"


def to_jsonb(value: Any) -> str:
    """JSON text that ``jsonb`` stores without loss; `from_jsonb` reverses it."""
    if isinstance(value, str):
        return json_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, dict):
        items = (f"{json_string(key)}:{to_jsonb(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_jsonb(item) for item in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def from_jsonb(value: Any) -> Any:
    """A value decoded from ``jsonb`` text written by `to_jsonb`, as it was before."""
    if isinstance(value, str):
        if value.startswith(_FLOAT_TAG):
            return float(value[len(_FLOAT_TAG) :])
        return unescape(value)
    if isinstance(value, dict):
        return {unescape(key): from_jsonb(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_jsonb(item) for item in value]
    return value
