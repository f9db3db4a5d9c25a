"""How an error that reaches ``cvault``'s entry point is shown, and the exit status it gives.

Exit status: 1 a local error (configuration, a file, missing credentials, a
service that cannot be reached), 2 a usage error (a bad argument, caught here or
by argparse), 3 a broken audit chain (``cvault audit verify``), 4 refused or not
found: whatever a service answered with an error, and every "not found",
"refused" or "conflict" cvault concludes from what a service (or, for the
database-backed admin commands, the database) answered — a wrong org slug, a
missing ``--only`` name, a version that could not be undeleted — so one rule
holds whichever side noticed (docs/client.md; tests/cli/test_exit_status.py), 5 the
outcome of a change is unknown (it may have been applied: an answer was lost; the
message says how to retry safely). Under ``--json`` the error is printed on
stdout as ``{"error": {"code", "message"}}``, the shape the services use.
"""

from __future__ import annotations

import json
import sys

from vault.errors import BadRequest, Conflict, NotFound, OutcomeUnknown, Unauthorized, VaultError

__all__ = [
    "EXIT_BROKEN_CHAIN",
    "EXIT_LOCAL",
    "EXIT_OUTCOME_UNKNOWN",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "exit_status",
    "report_error",
]

EXIT_LOCAL = 1
EXIT_USAGE = 2
EXIT_BROKEN_CHAIN = 3
EXIT_REFUSED = 4
EXIT_OUTCOME_UNKNOWN = 5


_REFUSALS = (NotFound, Unauthorized, Conflict)
"""Raised by cvault itself only from a service's (or the database's) answer: refusals, like the service's own."""


def exit_status(exc: BaseException) -> int:
    if isinstance(exc, OutcomeUnknown):
        return EXIT_OUTCOME_UNKNOWN
    if isinstance(exc, VaultError) and (exc.answered_by is not None or isinstance(exc, _REFUSALS)):
        return EXIT_REFUSED
    if isinstance(exc, BadRequest):
        return EXIT_USAGE
    return EXIT_LOCAL


def _describe(exc: Exception) -> tuple[str, str]:
    """``(code, message)`` for ``exc``; never a third-party exception's text."""
    if isinstance(exc, VaultError):
        # The operator runs a local command: the detail is theirs (a service's reply never carries one).
        return exc.code, exc.message if exc.detail is None else f"{exc.message} ({exc.detail})"
    if isinstance(exc, OSError) and exc.filename is not None:
        return "file_error", f"cannot use {exc.filename}: {exc.strerror or type(exc).__name__}"
    if isinstance(exc, EOFError):
        return "no_input", "stdin ended before the input cvault needed; give it with a flag (see --help)"
    # Only the type: a third-party exception's text may quote a header or a reply,
    # and those can carry tokens. Our own errors are VaultErrors, handled above.
    return (
        "internal",
        f"unexpected {type(exc).__name__}; the server's reply or a setting is malformed, or this is a bug in cvault",
    )


def report_error(exc: Exception, *, json_output: bool) -> int:
    """Print ``exc`` as one sentence plus its stable code (or as JSON); the exit status."""
    code, message = _describe(exc)
    if json_output:
        json.dump({"error": {"code": code, "message": message}}, sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(f"cvault: {message} ({code})", file=sys.stderr)
    return exit_status(exc)
