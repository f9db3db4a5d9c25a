"""Server errors back into :mod:`vault.errors`: the one boundary where HTTP replies become exceptions.

A reply ``{"error": {"code": "...", "message": "..."}}`` becomes the
:class:`~vault.errors.VaultError` subclass with that ``code``, carrying the
server's message unchanged, so a caller can ``except Unauthorized`` whether the
refusal happened locally or on the server. A code this client does not know
raises an :class:`UnknownCode` carrying the server's code and status, mixed
into the class the status implies (``except Unauthorized`` still catches a 403).
"""

from __future__ import annotations

from typing import Any, cast

from vault import errors

__all__ = ["UnknownCode", "error_classes", "error_from_reply"]


class UnknownCode(errors.VaultError):
    """An error reply whose code this client does not know; ``code`` and ``status`` are the server's."""

    code = "unknown_code"

    def __init__(self, message: str, *, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _subclasses(cls: type[errors.VaultError]) -> list[type[errors.VaultError]]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def error_classes() -> dict[str, type[errors.VaultError]]:
    """Every error class of :mod:`vault.errors`, by its stable code."""
    found: list[type[errors.VaultError]] = [errors.VaultError, *_subclasses(errors.VaultError)]  # `internal` too
    return {cls.code: cls for cls in found if cls.__module__ == errors.__name__}


_BY_CODE = error_classes()


def _make(cls: type[errors.VaultError], message: str) -> errors.VaultError:
    # Some classes build their message from structured arguments (MissingDischarge
    # takes a location); the server already wrote the sentence, so keep it verbatim.
    err = cls.__new__(cls)
    errors.VaultError.__init__(err, message)
    if isinstance(err, errors.Unauthorized):
        err.reasons = [message]
    return err


def error_from_reply(status: int, payload: Any, *, service: str) -> errors.VaultError:
    """The exception for an error reply; ``service`` names who answered, for replies without a body."""
    code: str | None = None
    message: str | None = None
    if isinstance(payload, dict):
        body = payload.get("error")
        if isinstance(body, dict):
            code = body.get("code") if isinstance(body.get("code"), str) else None
            message = body.get("message") if isinstance(body.get("message"), str) else None
        elif isinstance(body, str):
            # Fly's third-party protocol replies {"error": "..."}.
            message = body
    if message is None:
        message = f"{service} answered HTTP {status} without an error message"
    cls = _BY_CODE.get(code) if code else None
    if cls is not None:
        known = _make(cls, message)
        known.answered_by = service
        return known
    # An unknown code still gets the class its status implies (so `except
    # Unauthorized` works), but keeps the server's code for the message.
    kind = _UNKNOWN_BY_STATUS.get(status, UnknownCode)
    unknown = kind(message, code=code or _STATUS_CODES.get(status, f"http_{status}"), status=status)
    unknown.answered_by = service
    return unknown


def _unknown_kind(base: type[errors.VaultError]) -> type[UnknownCode]:
    name = f"Unknown{base.__name__}"
    doc = f"An error reply with an unknown code and the status of :class:`~vault.errors.{base.__name__}`."
    return cast(type[UnknownCode], type(name, (UnknownCode, base), {"__module__": __name__, "__doc__": doc}))


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "unauthorized",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    422: "unprocessable",
    429: "rate_limited",
    503: "unavailable",
}
_UNKNOWN_BY_STATUS = {status: _unknown_kind(_BY_CODE[code]) for status, code in _STATUS_CODES.items()}
