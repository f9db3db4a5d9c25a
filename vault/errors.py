"""The one exception tree of cvault.

Every error a caller can see is a :class:`VaultError` with a stable ``code`` and
an HTTP ``status``; the web layer's error middleware is the only place that
turns them into responses (``{"error": {"code", "message"}}``). Messages are
written for the person reading them: what happened and what to do. They never
contain secret values, keys or whole tokens.

::

    VaultError                    500 internal           (the base; an unexpected failure)
    ├── BadRequest                400 bad_request
    │   └── TooLarge              413 too_large
    ├── Unprocessable             422 unprocessable
    ├── InvalidToken              401 invalid_token      (bytes, signature, format)
    ├── MissingDischarge          401 discharge_required (3P caveat without discharge)
    ├── Unauthenticated           401 unauthenticated    (no credentials, bad session)
    ├── Unauthorized              403 unauthorized       (valid token, caveats refuse)
    ├── NotFound                  404 not_found
    ├── Conflict                  409 conflict
    ├── RateLimited               429 rate_limited
    ├── Unavailable               503 unavailable        (database down, audit failed; nothing was changed)
    │   ├── TransactionAborted    503 transaction_aborted (serialization failure, deadlock: retry)
    │   └── ConnectionFailed      503 connection_failed  (client side: the service did not answer)
    ├── BadReply                  502 bad_reply          (client side: not JSON, too large, a field missing)
    ├── OutcomeUnknown            503 outcome_unknown    (lost during COMMIT: the change may have been applied)
    ├── DatabaseError             500 database_error     (the database refused a statement or the COMMIT)
    ├── DecryptionError           500 decryption_failed  (ciphertext does not open)
    ├── ConfigError               config_error           (raised at start, never over HTTP)
    └── MigrationError            migration_error        (raised at start, never over HTTP)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BadReply",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "ConnectionFailed",
    "DatabaseError",
    "DecryptionError",
    "InvalidToken",
    "MigrationError",
    "MissingDischarge",
    "NotFound",
    "OutcomeUnknown",
    "RateLimited",
    "TooLarge",
    "TransactionAborted",
    "Unauthenticated",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "VaultError",
]


class VaultError(Exception):
    """Base of every error cvault raises on purpose."""

    code: str = "internal"
    status: int = 500
    default_message: str = "internal error"
    answered_by: str | None = None
    """The service whose error reply this is (set by the client); ``None`` when raised locally."""
    detail: str | None = None
    """For the operator only: logged by a service, shown by a local command, never sent in a reply.

    A database's connect error names hosts, ports and users of the deployment: the client hears the
    message, the server log gets the detail.
    """

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class BadRequest(VaultError):
    code = "bad_request"
    status = 400
    default_message = "the request is malformed"


class TooLarge(BadRequest):
    code = "too_large"
    status = 413
    default_message = "the request is too large"


class Unprocessable(VaultError):
    code = "unprocessable"
    status = 422
    default_message = "the request is well-formed but cannot be processed"


class InvalidToken(VaultError):
    """Anything wrong with a token's bytes, format or signature.

    The message is deliberately generic: telling an attacker which check
    failed helps them, and tells an honest user nothing they can act on.
    """

    code = "invalid_token"
    status = 401
    default_message = "invalid token"


class MissingDischarge(VaultError):
    """A third-party caveat has no (valid) discharge in the bundle."""

    code = "discharge_required"
    status = 401

    def __init__(self, location: str, reason: str | None = None) -> None:
        self.location = location
        text = reason or f"discharge for {location} missing"
        super().__init__(f"{text}; ask {location} for a discharge and send it with the token")


class Unauthenticated(VaultError):
    code = "unauthenticated"
    status = 401
    default_message = "credentials required"


class Unauthorized(VaultError):
    """A valid token whose caveats refuse this access; lists every reason."""

    code = "unauthorized"
    status = 403

    def __init__(self, reasons: Sequence[str] | str) -> None:
        self.reasons = [reasons] if isinstance(reasons, str) else list(reasons)
        super().__init__("; ".join(self.reasons) if self.reasons else "not allowed")


class NotFound(VaultError):
    code = "not_found"
    status = 404
    default_message = "not found"


class Conflict(VaultError):
    code = "conflict"
    status = 409
    default_message = "conflict"


class RateLimited(VaultError):
    """Too many requests; ``retry_after`` (whole seconds), when known, becomes the reply's ``Retry-After``."""

    code = "rate_limited"
    status = 429
    default_message = "too many requests; wait and try again"

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class Unavailable(VaultError):
    code = "unavailable"
    status = 503
    default_message = "service unavailable; nothing was changed, try again"


class TransactionAborted(Unavailable):
    """The database rolled the transaction back to keep concurrent changes consistent; retrying is safe."""

    code = "transaction_aborted"
    default_message = (
        "the database aborted the transaction because of a concurrent change; nothing was changed, try again"
    )


class ConnectionFailed(Unavailable):
    """Raised by the client when a service cannot be reached (after its retries); never sent over HTTP."""

    code = "connection_failed"
    default_message = "the service could not be reached; check the URL and that it is running"


class BadReply(VaultError):
    """Raised by the client when a service's reply cannot be used: not JSON, too large, a field missing.

    Never retried (a server that sends such a reply will send it again); never sent over HTTP.
    """

    code = "bad_reply"
    status = 502
    default_message = "the service sent a reply that could not be read; is the URL right and the service up to date?"


class OutcomeUnknown(VaultError):
    """The connection was lost (or the database stopped answering) during COMMIT: the change may have committed.

    Not an :class:`Unavailable`: that one promises nothing was changed, so anyone may
    retry it; this one may be retried only with the same ``Idempotency-Key``.
    """

    code = "outcome_unknown"
    status = 503
    default_message = (
        "the database stopped answering while the change was being committed, so it may have been applied; "
        "retry with the same Idempotency-Key (the store answers with the first outcome), or check the versions"
    )
    idempotency_key: str | None = None
    """Client side: the key the request was sent with (retry with it; ``None``: it was sent without one)."""

    def __init__(self, message: str | None = None, *, idempotency_key: str | None = None) -> None:
        self.idempotency_key = idempotency_key
        super().__init__(message)


class DatabaseError(VaultError):
    """The database refused a statement or the COMMIT for a reason other than being unreachable; rolled back."""

    code = "database_error"
    status = 500
    default_message = "the database refused the change; nothing was changed (the server log has the details)"


class DecryptionError(VaultError):
    """A ciphertext did not open: wrong key, wrong row, or tampered bytes."""

    code = "decryption_failed"
    status = 500
    default_message = "stored ciphertext failed to decrypt (wrong key, moved or tampered data)"


class ConfigError(VaultError):
    code = "config_error"
    status = 500
    default_message = "invalid configuration"


class MigrationError(VaultError):
    code = "migration_error"
    status = 500
    default_message = "database migrations failed"
