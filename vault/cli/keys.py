"""``cvault keys ...``: rotate and inspect the keys the services hold (docs/keys.md).

* ``rotate``: a new key-encryption key per schema, every stored key re-wrapped under it;
* ``rotate-master``: every KEK re-wrapped from the previous master key to the new one;
* ``status``: every key with its id, state, age and what it protects (``keys_status.py``);
* ``rotate-tokens`` / ``retire-tokens``: token root keys by kid (``keys_tokens.py``).
* ``rotate-tickets`` / ``retire-tickets``: X25519 ticket key pairs by id (``keys_tickets.py``).

Heavy modules (asyncpg, the storage layer) are imported by the command that runs,
so ``cvault --help`` and other commands do not pay for them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from .options import add_config_option, config_from_args, local_actor

SCHEMAS = ("store", "authority")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("keys", help="rotate and inspect encryption and signing keys")
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

    master = commands.add_parser(
        "rotate-master",
        help="re-wrap every key-encryption key under a new master key (online)",
        description=(
            "Re-wraps every KEK version of each schema from the previous master key to the new one, one "
            "transaction per schema, while the services keep running. Set CVAULT_MASTER_KEY (or _FILE, "
            "_COMMAND) to the NEW key and CVAULT_MASTER_KEY_PREVIOUS (or _PREVIOUS_FILE) to the OLD one. "
            "Safe to run again. Afterwards restart the services with the new key only (docs/keys.md)."
        ),
    )
    master.add_argument("--schema", choices=[*SCHEMAS, "all"], default="all", help="which service's keys")
    add_config_option(master)
    master.set_defaults(func=run_rotate_master)

    from .keys_status import register_status
    from .keys_tickets import register_tickets
    from .keys_tokens import register_tokens

    register_status(commands)
    register_tokens(commands)
    register_tickets(commands)


def _schemas(choice: str) -> tuple[str, ...]:
    return SCHEMAS if choice == "all" else (choice,)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_rotate(args: argparse.Namespace) -> int:
    return asyncio.run(rotate(config_from_args(args), _schemas(args.schema), args.batch_size))


async def rotate(config: Any, schemas: tuple[str, ...], batch_size: int) -> int:
    from vault.config import require_database_url, require_master_keys
    from vault.storage.key_rotation import rotate_keys
    from vault.storage.migrations import require_migrated
    from vault.storage.pool import close_pool, create_pool

    master_keys = require_master_keys(config)
    pool = await create_pool(require_database_url(config), min_size=1, max_size=2)
    try:
        for schema in schemas:
            await require_migrated(pool, schema, sql_dir=config.sql_dir)
            report = await rotate_keys(
                pool, schema, master_keys, batch_size=batch_size, progress=_progress, actor=local_actor()
            )
            print(f"{schema}: KEK version {report.new_version} active, {report.rewrapped} keys re-wrapped")
    finally:
        await close_pool(pool)
    return 0


def run_rotate_master(args: argparse.Namespace) -> int:
    return asyncio.run(rotate_master(config_from_args(args), _schemas(args.schema)))


async def rotate_master(config: Any, schemas: tuple[str, ...]) -> int:
    from vault.config import require_database_url, require_master_keys
    from vault.storage.key_rotation import rotate_master_key
    from vault.storage.migrations import require_migrated
    from vault.storage.pool import close_pool, create_pool

    master_keys = require_master_keys(config)
    pool = await create_pool(require_database_url(config), min_size=1, max_size=2)
    try:
        for schema in schemas:
            await require_migrated(pool, schema, sql_dir=config.sql_dir)
            report = await rotate_master_key(pool, schema, master_keys, progress=_progress, actor=local_actor())
            print(
                f"{schema}: {len(report.rewrapped)} KEK version(s) re-wrapped under the new master key, "
                f"{len(report.already)} already were"
            )
    finally:
        await close_pool(pool)
    print(
        "done: the old master key opens nothing now; restart the services with the new key and remove "
        "CVAULT_MASTER_KEY_PREVIOUS (running services keep working until then)"
    )
    return 0
