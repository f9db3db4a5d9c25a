"""``cvault audit``: verify and export the audit log straight from the database.

``verify`` and ``export`` are operator commands: they read the database named by
the configuration (``CVAULT_DATABASE_URL``), not the HTTP API, so they work when
the services are down and need no token (the database code is imported only when
they run). The subcommands that go through the store's API with the caller's token
(``cvault audit query``) live in their own modules, listed in :data:`SUBCOMMANDS`.

Exit status of ``verify``: 0 intact, 3 if any chain is broken (tampering or loss;
one line per chain names its first broken link), 1 for errors such as an
unreachable database.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from vault.storage.schema import SCHEMAS

from .errors import EXIT_BROKEN_CHAIN
from .options import add_config_option, config_from_args

if TYPE_CHECKING:
    from vault.audit.chain import LogReport
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
        "verify", help="recompute the hash chain and name the first broken link (exit 3 if broken)"
    )
    add_config_option(verify)
    _add_schema_option(verify)
    verify.add_argument(
        "--file", type=Path, metavar="FILE", help="verify an exported JSON-lines file instead of the database"
    )
    verify.add_argument("--json", action="store_true", help="print machine-readable JSON")
    verify.set_defaults(func=run_verify)

    export = audit_sub.add_parser("export", help="write every audit event as JSON lines")
    add_config_option(export)
    _add_schema_option(export)
    export.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here instead of stdout (mode 0600)")
    export.set_defaults(func=run_export)

    for module in SUBCOMMANDS:
        import_module(module).register(audit_sub)


def _add_schema_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--schema", choices=SCHEMAS, default="store", help="which service's log (default: store)")


def _print_report(label: str, report: LogReport, json_output: bool = False) -> int:
    status = 0 if report.ok else BROKEN_CHAIN_STATUS
    if json_output:
        from .output import print_json

        print_json(
            {
                "log": label,
                "ok": report.ok,
                "checked": report.checked,
                "message": report.message,
                # chain -1 is the checkpoints' own chain (or, in a file, a line that could not be read).
                "chains": [
                    {
                        "chain": c.chain,
                        "ok": c.ok,
                        "checked": c.checked,
                        "broken_seq": c.broken_seq,
                        "message": c.message,
                    }
                    for c in report.chains
                ],
            }
        )
        return status
    for chain in report.chains:
        if chain.ok:
            print(f"cvault audit verify: {label}: {chain.message}")
        else:
            print(f"cvault audit verify: {label}: BROKEN: {chain.message} ({chain.checked} before it verified)")
    print(f"cvault audit verify: {label}: {'intact' if report.ok else 'BROKEN'}: {report.message}")
    return status


def run_verify(args: argparse.Namespace) -> int:
    from vault.audit.query import verify_lines

    if args.file is not None:
        with args.file.open(encoding="utf-8") as lines:
            return _print_report(str(args.file), verify_lines(lines), args.json)
    return asyncio.run(verify_database(config_from_args(args), args.schema, args.json))


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
    config = config_from_args(args)
    if args.output is None:
        return asyncio.run(export_database(config, args.schema, sys.stdout, "stdout"))
    from .output import open_private

    with open_private(args.output) as out:
        return asyncio.run(export_database(config, args.schema, out, str(args.output)))


async def export_database(config: Config, schema: str, out: TextIO, label: str) -> int:
    from vault.audit.query import AuditQueries
    from vault.config import require_database_url
    from vault.storage.audit import PgAuditRepository
    from vault.storage.pool import close_pool, create_pool
    from vault.storage.privileges import privilege_errors

    pool = await create_pool(require_database_url(config), min_size=1, max_size=1)
    count = 0
    try:
        async with privilege_errors(pool, schema):
            async for line in AuditQueries(PgAuditRepository(pool, schema)).export():
                out.write(line)
                count += 1
                if count % _PROGRESS_EVERY == 0:
                    print(f"cvault audit export: {count} events...", file=sys.stderr)
    finally:
        await close_pool(pool)
    out.flush()
    print(f"cvault audit export: wrote {count} {schema} audit event(s) to {label}", file=sys.stderr)
    return 0
