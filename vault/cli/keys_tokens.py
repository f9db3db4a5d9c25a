"""``cvault keys rotate-tokens`` and ``cvault keys retire-tokens``: token root keys by kid (docs/keys.md)."""

from __future__ import annotations

import argparse
import asyncio
import re
from typing import Any

from .options import add_config_option, config_from_args, local_actor

__all__ = ["register_tokens"]

SERVICES = ("store", "authority")
# A kid as `cvault keys status` prints it (`store/store-root/000000000000002a`), or its hex alone.
_KID = re.compile(r"(?:(store|authority)/[a-z-]+/)?([0-9a-f]{1,16})")


def register_tokens(commands: Any) -> None:
    rotate: argparse.ArgumentParser = commands.add_parser(
        "rotate-tokens",
        help="make a new token root key (kid) the one that mints; older kids still verify until retired",
    )
    rotate.add_argument("--service", choices=SERVICES, required=True, help="whose token keys")
    add_config_option(rotate)
    rotate.set_defaults(func=run_rotate_tokens)

    retire = commands.add_parser(
        "retire-tokens",
        help="make every token signed with KID invalid on every node (asks for --yes)",
        description=(
            "Retires a token root key: within a second every node refuses every token signed with it, attenuated "
            "copies included. Without --yes it only says how many live tokens that kills."
        ),
    )
    retire.add_argument("kid", metavar="KID", help="the key id as `cvault keys status` shows it (hex)")
    retire.add_argument("--service", choices=SERVICES, help="whose key (needed only if both have this id)")
    retire.add_argument("--yes", action="store_true", help="retire it (without: only count what it kills)")
    add_config_option(retire)
    retire.set_defaults(func=run_retire_tokens)


def run_rotate_tokens(args: argparse.Namespace) -> int:
    return asyncio.run(_rotate(config_from_args(args), args.service))


async def _rotate(config: Any, service: str) -> int:
    from vault.config import require_database_url, require_master_keys
    from vault.storage.keys import PgKeyRepository
    from vault.storage.migrations import require_migrated
    from vault.storage.pool import close_pool, create_pool
    from vault.storage.token_keys import rotate_token_keys

    pool = await create_pool(require_database_url(config), min_size=1, max_size=2)
    try:
        await require_migrated(pool, service, sql_dir=config.sql_dir)
        keys = await PgKeyRepository.open(pool, service, require_master_keys(config), cache_size=0)
        new = await rotate_token_keys(pool, keys, service, actor=local_actor())
    finally:
        await close_pool(pool)
    kids = ", ".join(f"{key_id:016x}" for key_id in new) or "none (no org is enrolled)"
    print(f"{service}: new tokens are signed with kid {kids}; tokens under older kids verify until retired")
    return 0


def run_retire_tokens(args: argparse.Namespace) -> int:
    from vault.errors import BadRequest

    match = _KID.fullmatch(args.kid.strip().lower())
    if match is None:
        raise BadRequest(f"{args.kid!r} is not a key id; use the hex id `cvault keys status` shows")
    service = args.service or match.group(1)
    return asyncio.run(_retire(config_from_args(args), service, int(match.group(2), 16), args.yes))


async def _retire(config: Any, service: str | None, key_id: int, confirm: bool) -> int:
    from vault.config import require_database_url
    from vault.errors import BadRequest, NotFound
    from vault.storage.pool import close_pool, create_pool
    from vault.storage.token_keys import find_root_key, retire_token_key

    pool = await create_pool(require_database_url(config), min_size=1, max_size=2)
    try:
        if service is None:
            found = [s for s in SERVICES if await find_root_key(pool, s, key_id)]
            if not found:
                raise NotFound(f"no token root key {key_id:016x}; `cvault keys status` lists them")
            if len(found) > 1:
                raise BadRequest(f"both services have a key {key_id:016x}; say which with --service")
            service = found[0]
        done = await retire_token_key(pool, service, key_id, confirm=confirm, actor=local_actor())
    finally:
        await close_pool(pool)
    whose = f" of org {done.org_id}" if done.org_id is not None else ""
    kills = f"{done.live_tokens} live token(s)"
    if service == "authority":
        kills += f", {done.service_tokens} of them service tokens,"
    if not confirm:
        print(
            f"retiring {service} kid {key_id:016x}{whose} would invalidate {kills} and every copy attenuated from them"
        )
        print("nothing retired: run again with --yes to retire it")
        return 1
    print(f"retired {service} kid {key_id:016x}{whose}: {kills} and their attenuated copies are invalid on every node")
    return 0
