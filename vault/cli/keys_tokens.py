"""``cvault keys rotate-tokens`` and ``cvault keys retire-tokens``: token root keys by kid (docs/keys.md)."""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .options import add_config_option, config_from_args, local_actor

if TYPE_CHECKING:  # the commands import the storage layer only when they run
    from vault.storage.pool import Pool

__all__ = [
    "SERVICES",
    "parse_key_id",
    "pick_service",
    "register_tokens",
    "retire_from_args",
    "with_key_repository",
    "with_pool",
]

SERVICES = ("store", "authority")
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
# Whether a service has a key id (``find_root_key``, ``find_ticket_key``).
_Find = Callable[[Any, str, int], Awaitable[object]]


class _Retire(Protocol[T_co]):
    """``retire_token_key``, ``retire_ticket_key``."""

    def __call__(
        self, pool: Pool, service: str, key_id: int, *, confirm: bool, actor: str | None = None
    ) -> Awaitable[T_co]: ...


# A kid as `cvault keys status` prints it (`store/store-root/000000000000002a`), or its hex alone.
_KID = re.compile(r"(?:(store|authority)/[a-z0-9-]+/)?([0-9a-f]{1,16})")


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


async def with_key_repository(config: Any, service: str, action: Callable[[Any, Any], Awaitable[T]]) -> T:
    """``action(pool, keys)`` with a pool on the database and ``service``'s key repository (no cache)."""
    from vault.config import require_master_keys
    from vault.storage.keys import PgKeyRepository
    from vault.storage.migrations import require_migrated

    async def run(pool: Pool) -> T:
        await require_migrated(pool, service, sql_dir=config.sql_dir)
        keys = await PgKeyRepository.open(pool, service, require_master_keys(config), cache_size=0)
        return await action(pool, keys)

    return await with_pool(config, run)


async def with_pool(config: Any, action: Callable[[Any], Awaitable[T]]) -> T:
    """``action(pool)`` with a small pool on the configured database, closed afterwards."""
    from vault.config import require_database_url
    from vault.storage.pool import close_pool, create_pool

    pool = await create_pool(require_database_url(config), min_size=1, max_size=2)
    try:
        return await action(pool)
    finally:
        await close_pool(pool)


async def _rotate(config: Any, service: str) -> int:
    from vault.storage.token_keys import rotate_token_keys

    new = await with_key_repository(
        config, service, lambda pool, keys: rotate_token_keys(pool, keys, service, actor=local_actor())
    )
    kids = ", ".join(f"{key_id:016x}" for key_id in new) or "none (no org is enrolled)"
    print(f"{service}: new tokens are signed with kid {kids}; tokens under older kids verify until retired")
    return 0


def parse_key_id(text: str, service: str | None) -> tuple[str | None, int]:
    """(service, key id) of a key id as `cvault keys status` prints it, or its hex alone."""
    from vault.errors import BadRequest

    match = _KID.fullmatch(text.strip().lower())
    if match is None:
        raise BadRequest(f"{text!r} is not a key id; use the hex id `cvault keys status` shows")
    return service or match.group(1), int(match.group(2), 16)


async def pick_service(
    pool: Pool, service: str | None, key_id: int, found: Callable[[Any, str, int], Awaitable[object]], what: str
) -> str:
    """``service`` if given, else the one service ``found`` says has ``key_id``."""
    from vault.errors import BadRequest, NotFound

    if service is not None:
        return service
    having = [s for s in SERVICES if await found(pool, s, key_id)]
    if not having:
        raise NotFound(f"no {what} {key_id:016x}; `cvault keys status` lists them")
    if len(having) > 1:
        raise BadRequest(f"both services have a key {key_id:016x}; say which with --service")
    return having[0]


def retire_from_args(
    args: argparse.Namespace, key_text: str, find: _Find, retire: _Retire[T], what: str
) -> tuple[int, T]:
    """(key id, what ``retire`` said) for the key id in ``key_text``, in the service that has it, as the local user.

    Without ``--yes`` ``retire`` only says what retiring would do.
    """
    service, key_id = parse_key_id(key_text, args.service)

    async def run(pool: Pool) -> T:
        found = await pick_service(pool, service, key_id, find, what)
        return await retire(pool, found, key_id, confirm=args.yes, actor=local_actor())

    return key_id, asyncio.run(with_pool(config_from_args(args), run))


def run_retire_tokens(args: argparse.Namespace) -> int:
    from vault.storage.token_keys import find_root_key, retire_token_key

    key_id, done = retire_from_args(args, args.kid, find_root_key, retire_token_key, "token root key")
    service, confirm = done.service, args.yes
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
