"""``cvault keys rotate``: rotate the key-encryption key online."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from vault.config import Config, require_database_url, require_master_key
from vault.crypto.keyring import MasterKey
from vault.storage.key_rotation import rotate_keys
from vault.storage.migrations import require_migrated
from vault.storage.pool import close_pool, create_pool
from vault.storage.schema import SCHEMAS

from .options import add_config_option, config_from_args


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("keys", help="manage encryption keys")
    commands = parser.add_subparsers(dest="keys_command", metavar="COMMAND")
    commands.required = True
    rotate = commands.add_parser(
        "rotate",
        help="add a new key-encryption key, re-wrap every stored key under it, retire the old one",
    )
    rotate.add_argument("--schema", choices=[*SCHEMAS, "all"], default="all", help="which service's keys")
    rotate.add_argument("--batch-size", type=int, default=500, help="keys re-wrapped per transaction")
    add_config_option(rotate)
    rotate.set_defaults(func=run_rotate)


def run_rotate(args: argparse.Namespace) -> int:
    schemas = SCHEMAS if args.schema == "all" else (args.schema,)
    return asyncio.run(rotate(config_from_args(args), schemas, args.batch_size))


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def rotate(config: Config, schemas: tuple[str, ...], batch_size: int) -> int:
    master_key = MasterKey(require_master_key(config))
    pool = await create_pool(require_database_url(config), min_size=1, max_size=2)
    try:
        for schema in schemas:
            await require_migrated(pool, schema, sql_dir=config.sql_dir)
            report = await rotate_keys(pool, schema, master_key, batch_size=batch_size, progress=_progress)
            print(f"{schema}: KEK version {report.new_version} active, {report.rewrapped} keys re-wrapped")
    finally:
        await close_pool(pool)
    return 0
