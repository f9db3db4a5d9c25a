"""Entry point of ``cvault``: builds the argument parser from the command modules.

Each command module exposes ``register(subparsers)`` and sets ``func`` on its
parsers; ``func(args) -> int`` is the exit status. Errors that reach here are
printed as one sentence plus their stable code (exit 1); usage errors exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vault.errors import VaultError

from . import audit, audit_query, bootstrap, dev, keys, login, migrate, orgs, run, secrets, serve, store, tokens

# audit_query adds `cvault audit query` to the audit command when imported.
assert audit_query.add_query in audit.SUBCOMMANDS

COMMAND_MODULES = [login, orgs, secrets, store, tokens, run, audit, dev, serve, bootstrap, migrate, keys]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cvault",
        description=("cvault: a secret store whose tokens need the token authority's discharge to open anything."),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except VaultError as exc:
        print(f"cvault: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Only the type: a third-party exception's text may quote a header or a reply,
        # and those can carry tokens. Our own errors are VaultErrors, handled above.
        print(
            f"cvault: unexpected {type(exc).__name__}; the server's reply or a setting is malformed, "
            "or this is a bug in cvault (internal)",
            file=sys.stderr,
        )
        return 1
    return status
