"""``cvault keys rotate-tickets`` and ``cvault keys retire-tickets``: X25519 ticket key pairs (docs/keys.md)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from .keys_tokens import SERVICES, retire_from_args, with_key_repository
from .options import add_config_option, config_from_args, local_actor

__all__ = ["register_tickets"]

_AFTER_RETIRE = {
    "authority-org-x25519": "store tokens whose tickets were sealed to it get no org discharge, and stores refuse them",
    "authority-login-x25519": "permission tokens whose login tickets were sealed to it can get no login discharge",
    "authority-issuer-x25519": "login discharges of tokens minted with it no longer vouch for their user",
    "store-ticket": "every store node refuses the store tokens minted with it",
}


def register_tickets(commands: Any) -> None:
    rotate: argparse.ArgumentParser = commands.add_parser(
        "rotate-tickets",
        help="make new X25519 ticket key pairs the ones that seal; older pairs still open tickets until retired",
        description=(
            "--service authority adds a login, an org and an issuer pair; --service store adds a store-ticket "
            "pair. Every node switches at once; stores pick up the authority's new org key from its "
            "/.well-known/cvault/keys within authority_keys_interval (docs/keys.md)."
        ),
    )
    rotate.add_argument("--service", choices=SERVICES, required=True, help="whose ticket keys")
    add_config_option(rotate)
    rotate.set_defaults(func=run_rotate_tickets)

    retire = commands.add_parser(
        "retire-tickets",
        help="stop opening tickets sealed to the ticket key ID, on every node (asks for --yes)",
    )
    retire.add_argument("key_id", metavar="ID", help="the key id as `cvault keys status` shows it (hex)")
    retire.add_argument("--service", choices=SERVICES, help="whose key (needed only if both have this id)")
    retire.add_argument("--yes", action="store_true", help="retire it (without: only say what it does)")
    add_config_option(retire)
    retire.set_defaults(func=run_retire_tickets)


def run_rotate_tickets(args: argparse.Namespace) -> int:
    return asyncio.run(_rotate(config_from_args(args), args.service))


async def _rotate(config: Any, service: str) -> int:
    from vault.storage.ticket_keys import rotate_ticket_keys

    new = await with_key_repository(
        config, service, lambda pool, keys: rotate_ticket_keys(pool, keys, service, actor=local_actor())
    )
    for purpose, key_id in new:
        print(f"{service}/{purpose}/{key_id:016x} now seals new tickets; older pairs open theirs until retired")
    return 0


def run_retire_tickets(args: argparse.Namespace) -> int:
    from vault.storage.ticket_keys import find_ticket_key, retire_ticket_key

    key_id, done = retire_from_args(args, args.key_id, find_ticket_key, retire_ticket_key, "ticket key")
    service, confirm = done.service, args.yes
    name = f"{service}/{done.purpose}/{key_id:016x}"
    if not confirm:
        print(f"retiring {name}: {_AFTER_RETIRE[done.purpose]}")
        print("nothing retired: run again with --yes to retire it")
        return 1
    print(f"retired {name} on every node: {_AFTER_RETIRE[done.purpose]}")
    return 0
