"""Models and constrained field types both services' contracts share (:mod:`vault.web.contract`).

A constrained type is the server's rule and the document's schema at once: ``Annotated[str, Meta(pattern=...)]``
is checked by msgspec when a body or parameter is decoded, and exported as that JSON Schema. The patterns are the
ones :mod:`vault.names` checks with.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

from msgspec import Meta, Struct

__all__ = [
    "Error",
    "ErrorDetail",
    "Int64",
    "Mask",
    "Model",
    "NonNegative64",
    "Positive64",
    "Text",
    "Timestamp",
]

MAX_INT64: Final = 2**63 - 1


class Model(Struct, kw_only=True):
    """Base of request and reply bodies. Unknown fields in a request are ignored (clients may be newer)."""


# PostgreSQL's text refuses NUL; everything the store keeps as text must not hold one.
Text = Annotated[str, Meta(pattern=r"^[^\x00]*$")]
Int64 = Annotated[int, Meta(ge=-MAX_INT64 - 1, le=MAX_INT64)]
NonNegative64 = Annotated[int, Meta(ge=0, le=MAX_INT64)]
Positive64 = Annotated[int, Meta(ge=1, le=MAX_INT64)]
Mask = Annotated[str, Meta(pattern=r"^([rwcdCa]+|\*)$", description="permission letters, e.g. rw; * for all")]
Timestamp = Annotated[dt.datetime, Meta(tz=True)]


class ErrorDetail(Model):
    code: str
    message: str


class Error(Model):
    """Every error reply of the native APIs: ``{"error": {"code", "message"}}`` (docs/api.md)."""

    error: ErrorDetail
