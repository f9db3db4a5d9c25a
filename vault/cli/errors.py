"""How an error that reaches ``cvault``'s entry point is shown, and the exit status it gives."""

from __future__ import annotations

import sys

from vault.errors import VaultError

__all__ = ["report_error"]


def report_error(exc: Exception, *, json_output: bool) -> int:
    """Print ``exc`` as one sentence plus its stable code; the exit status."""
    if isinstance(exc, VaultError):
        print(f"cvault: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    # Only the type: a third-party exception's text may quote a header or a reply,
    # and those can carry tokens. Our own errors are VaultErrors, handled above.
    print(
        f"cvault: unexpected {type(exc).__name__}; the server's reply or a setting is malformed, "
        "or this is a bug in cvault (internal)",
        file=sys.stderr,
    )
    return 1
