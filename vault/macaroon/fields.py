"""Checks for caveat bodies read from the wire or from JSON, and the wording of refusals.

Every check raises ``ValueError`` naming what was expected; the caveat registry turns
that into :class:`~vault.errors.InvalidToken` for wire bytes and into a message for JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from . import access as acc
from .caveat import Refusal


def uint(value: Any, bits: int = 64) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ValueError(f"expected an unsigned {bits}-bit integer, got {value!r}")
    return value


def int64(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"expected a 64-bit integer, got {value!r}")
    return value


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def binary(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError(f"expected bytes, got {type(value).__name__}")
    return value


def mask(value: Any) -> int:
    if isinstance(value, str):
        return acc.mask_from_string(value)
    return uint(value, 16)


def struct_fields(body: Any, n: int) -> list[Any]:
    # Struct bodies are positional arrays; fields may be appended by later
    # versions, so accept longer arrays and ignore what we do not know yet.
    if not isinstance(body, list) or len(body) < n:
        raise ValueError(f"expected an array of at least {n} fields")
    return body


def timestamp(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 7200:
        return f"{seconds // 60} minutes"
    return f"{seconds // 3600} hours"


def action_refusal(what: str, wanted: int, allowed: int) -> Refusal:
    missing = acc.mask_to_string(wanted & ~allowed)
    return Refusal(f"{what} allows '{acc.mask_to_string(allowed)}', not '{missing}'")
