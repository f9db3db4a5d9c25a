"""Entry point of ``cvault``: a table of commands, each module imported only when its command runs.

``cvault --help`` and ``cvault --version`` import no command module at all; any
other invocation imports only the module that owns the chosen command, so a
client command never pays for the servers, asyncpg or aiohttp
(tests/cli/test_imports.py keeps it that way).

To add a command: write ``vault/cli/<module>.py`` with ``register(subparsers)``,
which adds the command's parser and sets ``func`` on it (``func(args) -> int``,
the exit status), and add one line to :data:`COMMANDS`. Keep the module's
top-level imports to what parsing needs; import heavy things inside ``func``.

Exit status (docs/client.md): 0 success, 1 a local error (configuration, a
file, a service that cannot be reached), 2 a usage error, 3 a broken audit
chain, 4 refused or not found, whether a service said so or cvault concluded it
from a service's answer (its code and message are printed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import NamedTuple

from vault import __version__

__all__ = ["COMMANDS", "SERVING", "build_parser", "main"]

EXIT_BROKEN_PIPE = 141  # what a shell reports for a process killed by SIGPIPE


class Command(NamedTuple):
    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "login": Command("vault.cli.login", "log in to the authority and save the session"),
    "logout": Command("vault.cli.login", "revoke the saved session and delete it"),
    "orgs": Command("vault.cli.orgs", "organizations and their members"),
    "workloads": Command("vault.cli.workloads", "workload identity: OIDC issuers and bindings"),
    "secrets": Command("vault.cli.secrets", "set, read and manage secrets"),
    "vaults": Command("vault.cli.secrets", "list, create and delete vaults"),
    "rotation": Command("vault.cli.rotation", "rotate secrets on a schedule (PostgreSQL credentials, hooks)"),
    "store": Command("vault.cli.store", "enrol an org at the store; store tokens"),
    "tokens": Command("vault.cli.tokens", "inspect, attenuate and manage tokens"),
    "run": Command("vault.cli.run", "run a command with a vault's secrets in its environment"),
    "audit": Command("vault.cli.audit", "verify, export and query the hash-chained audit log"),
    "dev": Command(
        "vault.cli.dev", "run a local development setup (embedded PostgreSQL unless CVAULT_DATABASE_URL is set)"
    ),
    "serve": Command("vault.cli.serve", "run one cvault service"),
    "bootstrap": Command("vault.cli.bootstrap", "create the first owner, org and session on an empty database"),
    "migrate": Command("vault.cli.migrate", "apply pending database migrations (CVAULT_DATABASE_URL)"),
    "keys": Command("vault.cli.keys", "rotate and inspect encryption and signing keys"),
    "vault-token": Command(
        "vault.cli.vault_token", "print a bundle for Vault clients (VAULT_TOKEN), or keep a file holding a fresh one"
    ),
    "completion": Command("vault.cli.completion", "print a shell completion script (bash, zsh or fish)"),
}

_EPILOG = (
    "Run `cvault COMMAND --help` for a command's options. Exit status: 0 success, 1 local error "
    "(configuration, files, a service that cannot be reached), 2 usage error, 3 broken audit chain, "
    "4 refused or not found, 5 the outcome of a change is unknown (it may have been applied; docs/client.md)."
)


class _Parser(argparse.ArgumentParser):
    """Remembers the innermost (sub)command parser that ran, so a usage error shows that command's usage."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        # A subcommand's parser returns before its parent's, so the first one to set it is the innermost.
        if getattr(parsed, _INNERMOST, None) is None:
            setattr(parsed, _INNERMOST, self)
        return parsed, extras


_INNERMOST = "_cvault_parser"


def _chosen(argv: Sequence[str]) -> str | None:
    """The command word: the first argument that is not an option (top-level options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None, *, full: bool = False) -> argparse.ArgumentParser:
    """The parser for ``command`` (its module registered, the others listed by name only), or every module."""
    parser = _Parser(
        prog="cvault",
        description="cvault: a secret store whose tokens need the token authority's discharge to open anything.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"cvault {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = COMMANDS[command].module if command in COMMANDS else None
    registered: set[str] = set()
    for name, entry in COMMANDS.items():
        if full or entry.module == wanted:
            if entry.module not in registered:
                registered.add(entry.module)
                import_module(entry.module).register(sub)
        else:
            sub.add_parser(name, help=entry.help, add_help=False)
    return parser


SERVING = frozenset({"serve", "dev"})
"""Commands that serve HTTP: aiohttp runs on its pure-Python parser there, which accepts Vault's ``LIST``
method (llhttp, its C parser, answers it 400). aiohttp reads ``AIOHTTP_NO_EXTENSIONS`` once, when it is
first imported: before the command's module is (docs/vault-compat.md, "The LIST method")."""


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = _chosen(args_list)
    if command in SERVING:
        import os

        os.environ["AIOHTTP_NO_EXTENSIONS"] = "1"
    parser = build_parser(command)
    args, unknown = parser.parse_known_args(args_list)
    innermost: argparse.ArgumentParser = getattr(args, _INNERMOST, parser)
    if unknown:  # a typo'd flag: the usage of the command it was given to, not cvault's
        innermost.error(f"unrecognized arguments: {' '.join(unknown)}")
    delattr(args, _INNERMOST)
    func = getattr(args, "func", None)
    if func is None:  # a placeholder parser: cannot happen, the chosen command's module is registered
        parser.error(f"{args.command}: no such command")
    from .errors import report_error

    try:
        status: int = func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _broken_pipe()
    except Exception as exc:
        return report_error(exc, json_output=bool(getattr(args, "json", False)))
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return _broken_pipe()
    return status


def _broken_pipe() -> int:
    # The reader went away (`cvault audit query --json | head`): nothing left to say to it.
    # Point stdout at /dev/null so the interpreter's final flush does not complain.
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE
