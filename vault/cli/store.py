"""``cvault store``: enrol an organization at the store, mint and revoke store tokens.

Commands whose job is to hand out a token print only the token on stdout (so
``$(cvault store tokens mint ...)`` works) and what it is on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vault.client import Client
from vault.client.authority_models import PermissionToken, ServiceToken
from vault.client.models import MintedToken, to_json
from vault.errors import BadRequest
from vault.macaroon import mask_from_string

from .client_options import add_client_options, client_command, runs_with_client
from .orgs import resolve_org
from .output import add_output_option, open_private, print_json

__all__ = ["DEFAULT_MINT_TTL", "print_token", "register"]

DEFAULT_MINT_TTL = 30 * 86400
"""A minted store token expires unless asked not to: a forgotten workload token should not live forever."""


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("store", help="enrol an org at the store; store tokens")
    ssub = parser.add_subparsers(dest="store_command", metavar="SUBCOMMAND")
    ssub.required = True

    p = ssub.add_parser(
        "enroll",
        help="enrol an organization at the store and print its root store token",
        description="Needs a login session of an owner of ORG (the authority discharges the store's challenge).",
    )
    p.add_argument("org", help="org id or slug")
    add_client_options(p)
    add_output_option(p, "the token")
    p.set_defaults(func=client_command(_enroll))

    tparser = ssub.add_parser("tokens", help="mint and revoke store tokens")
    tsub = tparser.add_subparsers(dest="store_tokens_command", metavar="SUBCOMMAND")
    tsub.required = True
    p = tsub.add_parser(
        "mint",
        help="mint a narrower store token (e.g. --mask r --vault prod for a workload)",
        description="Needs CVAULT_STORE_TOKEN with C (control) on the org.",
    )
    p.add_argument("--mask", required=True, help="permission letters: r w c d C a")
    p.add_argument("--vault", action="append", default=[], metavar="V", help="limit to this vault (repeatable)")
    p.add_argument(
        "--secret", action="append", default=[], metavar="PREFIX", help="limit to names with this prefix (repeatable)"
    )
    p.add_argument(
        "--ttl",
        type=int,
        default=DEFAULT_MINT_TTL,
        metavar="SECONDS",
        help=f"lifetime in seconds (default: {DEFAULT_MINT_TTL // 86400} days; 0: no expiry)",
    )
    add_output_option(p, "the token")
    runs_with_client(p, _mint)

    p = tsub.add_parser("revoke", help="revoke a store token by id")
    p.add_argument("id")
    runs_with_client(p, _revoke)


def print_token(reply: MintedToken | PermissionToken | ServiceToken, args: argparse.Namespace, what: str) -> None:
    """The token alone on stdout (so `$(...)` takes it), what it is on stderr; ``--json``: the whole reply.

    ``--output FILE``: the same (the token, or with ``--json`` the reply) in FILE, mode 0600, nothing on stdout.
    """
    output = getattr(args, "output", None)
    if output is None:
        if args.json:
            print_json(to_json(reply))
            return
        print(reply.token)
    else:
        with open_private(output) as handle:
            if args.json:
                print_json(to_json(reply), handle)
            else:
                handle.write(reply.token + "\n")
        what += f", written to {output} (mode 0600)"
    print(f"cvault: {what}, id {reply.id}", file=sys.stderr)


async def _enroll(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    reply = await client.store.enroll(org.id, org.slug)
    print_token(reply, args, f"root store token of {org.slug} (org {org.id}); keep it like a password")
    return 0


async def _mint(client: Client, args: argparse.Namespace) -> int:
    try:
        mask_from_string(args.mask)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    vaults = {v: args.mask for v in args.vault}
    secrets = {s: args.mask for s in args.secret}
    if args.ttl < 0:
        raise BadRequest("--ttl takes seconds (0: no expiry)")
    ttl = args.ttl or None
    reply = await client.store.mint_token(args.mask, vaults=vaults or None, secrets=secrets or None, ttl=ttl)
    where = f" on vault(s) {', '.join(args.vault)}" if args.vault else ""
    print_token(reply, args, f"store token with mask {args.mask}{where}")
    return 0


async def _revoke(client: Client, args: argparse.Namespace) -> int:
    reply = await client.store.revoke_token(args.id)
    print_json(reply) if args.json else print(f"store token {args.id} revoked")
    return 0
