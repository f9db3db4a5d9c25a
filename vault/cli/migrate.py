"""``cvault migrate``: apply pending database migrations of both schemas."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from vault.config import Config, require_database_url
from vault.storage.migrations import migrate
from vault.storage.pool import close_pool, create_pool
from vault.storage.schema import SCHEMAS

from .options import add_config_option, config_from_args


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "migrate", help="apply pending database migrations (CVAULT_DATABASE_URL)"
    )
    parser.add_argument(
        "--schema",
        choices=[*SCHEMAS, "all"],
        default="all",
        help="only this service's schema (when each service has its own database role)",
    )
    add_config_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    schemas = SCHEMAS if args.schema == "all" else (args.schema,)
    return asyncio.run(run_migrations(config_from_args(args), schemas))


async def run_migrations(config: Config, schemas: tuple[str, ...] = SCHEMAS) -> int:
    pool = await create_pool(require_database_url(config), min_size=1, max_size=1)
    try:
        applied = await migrate(pool, sql_dir=config.sql_dir, schemas=schemas)
    finally:
        await close_pool(pool)
    for migration in applied:
        print(f"applied {migration.label}")
    print(f"cvault migrate: {len(applied)} migration(s) applied; the database is up to date")
    return 0
