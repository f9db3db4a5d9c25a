"""``cvault rotation``: managed rotation's policies (docs/rotation.md).

``set`` makes or replaces a secret's policy (the store checks the secret's value is a connection document it can
rotate), ``show``/``list``/``status`` say where rotations stand, ``disable`` stops them, ``now`` makes one due at
once, and ``token`` mints the store token a rotator needs for the named secrets, and nothing more.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from vault.client import Client
from vault.client.models import to_json
from vault.errors import BadRequest

from .client_options import add_client_options, client_command, default_vault
from .output import print_json, print_table

__all__ = ["parse_every", "register"]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"([1-9][0-9]{0,8})([smhd])")


def parse_every(text: str) -> int:
    """``30d``, ``12h``, ``90m`` or ``3600s`` as seconds."""
    match = _EVERY.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a period such as 30d, 12h, 90m or 3600s")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _vault(args: argparse.Namespace) -> str:
    return str(args.vault or default_vault())


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vault", help="the vault (default: $CVAULT_VAULT or 'default')")
    add_client_options(p)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "rotation",
        help="rotate secrets on a schedule (PostgreSQL credentials, hooks)",
        description="Managed rotation: the rotator (`cvault serve rotator`) rotates each secret with a policy "
        "on its schedule, create -> set -> test -> promote (docs/rotation.md).",
    )
    rsub = parser.add_subparsers(dest="rotation_command", metavar="SUBCOMMAND")
    rsub.required = True

    p = rsub.add_parser("set", help="rotate a secret on a schedule (makes or replaces its policy)")
    p.add_argument("name")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--postgres", action="store_true", help="the value is a PostgreSQL connection document")
    kind.add_argument("--command", metavar="HOOK", help="rotate through the rotators' hook named HOOK")
    p.add_argument("--every", type=parse_every, required=True, metavar="PERIOD", help="e.g. 30d, 12h, 90m")
    p.add_argument("--strategy", choices=("single", "alternating"), default="single")
    p.add_argument("--admin-secret", metavar="NAME", help="postgres: the secret holding the admin connection")
    p.add_argument("--password-length", type=int, default=32, metavar="N", help="16 to 128 (default 32)")
    _common(p)
    p.set_defaults(func=client_command(_set))

    for name, text, action in (
        ("show", "a secret's policy and where its rotations stand", _show),
        ("disable", "stop rotating a secret (its policy is kept; `set` or `now` enables it again)", _disable),
        ("now", "rotate a secret as soon as a rotator polls", _now),
    ):
        p = rsub.add_parser(name, help=text)
        p.add_argument("name")
        _common(p)
        p.set_defaults(func=client_command(action))

    p = rsub.add_parser("list", help="the vault's rotation policies")
    _common(p)
    p.set_defaults(func=client_command(_list))

    p = rsub.add_parser("status", help="last success, last failure and its reason, next due, for each policy")
    p.add_argument("name", nargs="?", help="only this secret")
    _common(p)
    p.set_defaults(func=client_command(_status))

    p = rsub.add_parser(
        "token",
        help="mint the store token a rotator needs for these secrets (write them, read their admin secrets)",
    )
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--prefix", help="every secret whose name starts with this (for many rotated secrets)")
    p.add_argument("--ttl", type=parse_every, metavar="PERIOD", help="the token's lifetime (default: none)")
    _common(p)
    p.set_defaults(func=client_command(_token))


async def _set(client: Client, args: argparse.Namespace) -> int:
    if args.postgres and not args.admin_secret:
        raise BadRequest("--postgres needs --admin-secret NAME: the secret holding the admin connection")
    if args.command and (args.admin_secret or args.strategy != "single"):
        raise BadRequest("--command takes neither --admin-secret nor --strategy alternating")
    status = await client.rotation.set_policy(
        _vault(args),
        args.name,
        target="postgres" if args.postgres else "command",
        every_seconds=args.every,
        strategy=args.strategy,
        admin_secret=args.admin_secret,
        hook=args.command,
        password_length=args.password_length,
    )
    if args.json:
        print_json(to_json(status))
    else:
        print(f"{status.vault}/{status.name}: rotated every {args.every} s ({status.strategy}); next due "
              f"{status.next_due_at}")  # fmt: skip
    return 0


def _print_one(r: Any) -> None:
    rows = [
        ("target", r.target if r.hook is None else f"command {r.hook}"),
        ("strategy", r.strategy),
        ("every", f"{r.every_seconds} s"),
        ("admin secret", r.admin_secret),
        ("enabled", "yes" if r.enabled else "no"),
        ("next due", r.next_due_at),
        ("rotations", r.rotations),
        ("last success", f"{r.last_success_at} (version {r.last_rotated})" if r.last_success_at else "never"),
        ("last failure", f"{r.last_failure_at}: {r.last_failure}" if r.last_failure_at else "none"),
        ("failed attempts", r.attempt),
        ("in progress", f"{r.step} (version {r.pending_version})" if r.step else "no"),
        ("leased to", f"{r.holder} until {r.lease_expires_at}" if r.holder and r.lease_expires_at else "nobody"),
    ]
    print(f"{r.vault}/{r.name}")
    for key, value in rows:
        print(f"  {key + ':':<17}{'' if value is None else value}")


async def _show(client: Client, args: argparse.Namespace) -> int:
    r = await client.rotation.show(_vault(args), args.name)
    print_json(to_json(r)) if args.json else _print_one(r)
    return 0


async def _disable(client: Client, args: argparse.Namespace) -> int:
    r = await client.rotation.disable(_vault(args), args.name)
    print_json(to_json(r)) if args.json else print(f"{r.vault}/{r.name}: rotation disabled")
    return 0


async def _now(client: Client, args: argparse.Namespace) -> int:
    r = await client.rotation.rotate_now(_vault(args), args.name)
    print_json(to_json(r)) if args.json else print(f"{r.vault}/{r.name}: due now ({r.next_due_at})")
    return 0


async def _list(client: Client, args: argparse.Namespace) -> int:
    found = await client.rotation.list_policies(_vault(args))
    if args.json:
        print_json(to_json(found))
        return 0
    rows = [
        [r.name, r.target if r.hook is None else f"command {r.hook}", r.strategy, f"{r.every_seconds}s",
         "yes" if r.enabled else "no", r.next_due_at]
        for r in found
    ]  # fmt: skip
    print_table(["NAME", "TARGET", "STRATEGY", "EVERY", "ENABLED", "NEXT DUE"], rows)
    return 0


async def _status(client: Client, args: argparse.Namespace) -> int:
    vault = _vault(args)
    found = [await client.rotation.show(vault, args.name)] if args.name else await client.rotation.list_policies(vault)
    if args.json:
        print_json(to_json(found))
        return 0
    rows = [
        [r.name, r.last_success_at or "never", r.last_failure_at or "", r.last_failure or "", r.attempt,
         r.next_due_at if r.enabled else "disabled", f"{r.step} v{r.pending_version}" if r.step else ""]
        for r in found
    ]  # fmt: skip
    print_table(["NAME", "LAST SUCCESS", "LAST FAILURE", "REASON", "FAILED", "NEXT DUE", "IN PROGRESS"], rows)
    return 0


async def _token(client: Client, args: argparse.Namespace) -> int:
    token = await client.rotation.rotator_token(_vault(args), args.names, prefix=args.prefix, ttl=args.ttl)
    print_json({"token": token}) if args.json else print(token)
    return 0
