"""``cvault audit``: verify and export the audit log, from the database or through the store's API.

With a database URL (``CVAULT_DATABASE_URL``) ``verify`` and ``export`` read the
database, so an operator can run them while the services are down (the database code
is imported only then). Without one they ask the store's API with the auditor's
credentials (a store token with ``a``, as ``cvault audit query`` uses): the store
verifies its whole log, and exports the org's events with every chain's head and the
checkpoints (docs/audit.md, "Export"). ``verify --file`` checks an export offline and
refuses one that is not whole. The subcommands that only use the API live in their
own modules, listed in :data:`SUBCOMMANDS`.

Exit status of ``verify``: 0 intact, 3 if any chain is broken or the file is not a
whole export (tampering, loss or truncation; one line per chain names its first
broken link), 1 for errors such as an unreachable database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from vault.storage.schema import SCHEMAS

from .client_options import add_client_options, client_settings, make_client
from .errors import EXIT_BROKEN_CHAIN
from .options import config_from_args

if TYPE_CHECKING:
    from vault.audit.chain import LogReport
    from vault.client import Client
    from vault.config import Config

__all__ = ["BROKEN_CHAIN_STATUS", "SUBCOMMANDS", "register"]

BROKEN_CHAIN_STATUS = EXIT_BROKEN_CHAIN
_PROGRESS_EVERY = 10_000

# Modules whose ``register(audit_subparsers)`` adds one more ``cvault audit`` subcommand.
SUBCOMMANDS = ["vault.cli.audit_query", "vault.cli.audit_console"]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "audit", help="verify, export and query the hash-chained audit log"
    )
    audit_sub = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    audit_sub.required = True

    verify = audit_sub.add_parser(
        "verify",
        help="recompute the hash chains and name the first broken link (exit 3 if broken)",
        description="With CVAULT_DATABASE_URL: on the database. Without: the store verifies its log for a caller "
        "with 'a' (CVAULT_STORE_TOKEN). --file: an export, offline.",
    )
    add_client_options(verify)
    _add_schema_option(verify)
    verify.add_argument(
        "--file",
        type=Path,
        metavar="FILE",
        help="verify an exported JSON-lines file, offline (neither the store nor the database)",
    )
    verify.set_defaults(func=run_verify)

    export = audit_sub.add_parser(
        "export",
        help="write the audit log as JSON lines with every chain's head and the checkpoints",
        description="With CVAULT_DATABASE_URL: every event of the log. Without: the store token's org's events, "
        "through the store's API (needs 'a').",
    )
    add_client_options(export, json_flag=False)
    _add_schema_option(export)
    export.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here (mode 0600) instead of stdout")
    export.set_defaults(func=run_export)

    for module in SUBCOMMANDS:
        import_module(module).register(audit_sub)


def _add_schema_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--schema", choices=SCHEMAS, default="store", help="which service's log (default: store)")


def _print_report(label: str, report: LogReport, json_output: bool = False) -> int:
    status = 0 if report.ok else BROKEN_CHAIN_STATUS
    if json_output:
        from .output import print_json

        # chain -1 is the checkpoints' own chain (or, in a file, a line that could not be read).
        print_json({"log": label, **report.to_json()})
        return status
    for chain in report.chains:
        if chain.ok:
            print(f"cvault audit verify: {label}: {chain.message}")
        else:
            print(f"cvault audit verify: {label}: BROKEN: {chain.message} ({chain.checked} before it verified)")
    print(f"cvault audit verify: {label}: {'intact' if report.ok else 'BROKEN'}: {report.message}")
    return status


def _database_url(args: argparse.Namespace) -> str | None:
    """The database to read, or None to go through the store's API (the store's log only)."""
    url = config_from_args(args).database_url
    if url is None and args.schema != "store":
        from vault.errors import ConfigError

        raise ConfigError(f"the {args.schema}'s audit log is read from its database: set CVAULT_DATABASE_URL")
    return url


def run_verify(args: argparse.Namespace) -> int:
    from vault.audit.export import verify_lines

    if args.file is not None:
        with args.file.open(encoding="utf-8") as lines:
            return _print_report(str(args.file), verify_lines(lines), args.json)
    if _database_url(args) is None:
        return asyncio.run(_verify_through_api(args))
    return asyncio.run(verify_database(config_from_args(args), args.schema, args.json))


async def _verify_through_api(args: argparse.Namespace) -> int:
    from vault.audit.chain import LogReport
    from vault.errors import BadReply

    async with _api_client(args) as client:
        reply = await client.store.audit_verify()
    try:
        report = LogReport.from_json(reply)
    except ValueError as exc:
        raise BadReply(f"the store's verification reply is malformed: {exc}") from None
    return _print_report("store audit log", report, args.json)


def _api_client(args: argparse.Namespace) -> Client:
    # The aiohttp transport: an export streams, which the blocking transport does not do.
    from vault.client.http import HTTP

    settings = client_settings(args)
    return make_client(settings, http=HTTP(ca_cert=settings.ca_cert))


async def verify_database(config: Config, schema: str, json_output: bool = False) -> int:
    from vault.audit.query import AuditQueries
    from vault.config import require_database_url
    from vault.storage.audit import PgAuditRepository
    from vault.storage.pool import close_pool, create_pool
    from vault.storage.privileges import privilege_errors

    pool = await create_pool(require_database_url(config), min_size=1, max_size=1)
    try:
        async with privilege_errors(pool, schema):
            report = await AuditQueries(PgAuditRepository(pool, schema)).verify()
    finally:
        await close_pool(pool)
    return _print_report(f"{schema} audit log", report, json_output)


def run_export(args: argparse.Namespace) -> int:
    database_url = _database_url(args)

    async def lines() -> AsyncIterator[str]:
        if database_url is not None:
            async for line in _database_lines(database_url, args.schema):
                yield line
            return
        async with _api_client(args) as client:
            async for line in client.store.audit_export():
                yield line

    if args.output is None:
        return asyncio.run(_write_export(lines(), sys.stdout, "stdout", args.schema))
    # Written beside the target and renamed once whole: a failed export leaves no file that looks like one,
    # and the log (who read what) is readable by its owner only.
    partial = args.output.with_name(f".{args.output.name}.partial")
    # A fresh file, never one already there: in a shared directory `.FILE.partial` could be another user's
    # symlink, which O_TRUNC and fchmod would follow to a file of ours.
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            status = asyncio.run(_write_export(lines(), out, str(args.output), args.schema))
        os.replace(partial, args.output)
    finally:
        partial.unlink(missing_ok=True)
    return status


async def _database_lines(database_url: str, schema: str) -> AsyncIterator[str]:
    from vault.audit.query import AuditQueries
    from vault.storage.audit import PgAuditRepository
    from vault.storage.pool import close_pool, create_pool
    from vault.storage.privileges import privilege_errors

    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with privilege_errors(pool, schema):
            async for line in AuditQueries(PgAuditRepository(pool, schema)).export():
                yield line
    finally:
        await close_pool(pool)


async def _write_export(lines: AsyncIterator[str], out: TextIO, label: str, schema: str) -> int:
    import json

    from vault.errors import BadReply

    written = 0
    last = ""
    async for line in lines:
        out.write(line)
        last = line
        written += 1
        if written % _PROGRESS_EVERY == 0:
            print(f"cvault audit export: {written} lines...", file=sys.stderr)
    try:
        end = json.loads(last)
        count = int(end["events"]) if end.get("kind") == "end" else None
    except (ValueError, TypeError, KeyError, AttributeError):
        count = None
    if count is None:
        # The store stopped mid-stream (its database went away): the file would verify as truncated.
        raise BadReply("the export ended before its end line; nothing was kept, try again")
    out.flush()
    print(f"cvault audit export: wrote {count} {schema} audit event(s) to {label}", file=sys.stderr)
    return 0
