"""What an audit event says about a request that failed: the error's code, status and reason."""

from __future__ import annotations

from typing import Any

from vault.errors import VaultError

__all__ = ["MAX_REASON", "refusal_detail", "refusal_outcome"]

MAX_REASON = 1000


def refusal_outcome(exc: VaultError) -> str:
    """``denied`` for a 401 or 403, ``error`` for any other failure."""
    return "denied" if exc.status in (401, 403) else "error"


def refusal_detail(exc: VaultError) -> dict[str, Any]:
    # Reasons quote caller-chosen text (a token's own caveats, a name); an audit event refuses
    # NUL and unpaired surrogates, and a refusal must be recorded whatever it quotes.
    reason = exc.message[:MAX_REASON].encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return {"code": exc.code, "status": exc.status, "reason": reason}
