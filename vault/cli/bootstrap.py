"""``cvault bootstrap``: the first owner, org and session on an empty authority database.

The password comes from a prompt (a terminal), from stdin (``--password-stdin``),
or is generated (``--generate-password``). The session secret (and a generated
password) is printed once and never stored in clear.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import secrets
import sys
from typing import Any

from vault.authority.accounts import check_password
from vault.authority.bootstrap import Bootstrapped, bootstrap
from vault.config import Config
from vault.errors import BadRequest
from vault.storage.pool import Pool
from vault.web.authority.app import open_authority

from .options import add_config_option, config_from_args

__all__ = ["print_bootstrapped", "register", "run_bootstrap"]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "bootstrap",
        help="create the first owner, org and session on an empty database",
        description="Create the first owner, org and session on an empty authority database. Run again with the "
        "same email, password and org, it finishes a bootstrap that was cut short (and prints a new session).",
    )
    parser.add_argument("--email", required=True, help="the owner's email")
    parser.add_argument("--org", required=True, metavar="SLUG", help="the first organization's slug")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    source.add_argument("--generate-password", action="store_true", help="generate a password and print it once")
    add_config_option(parser)
    parser.set_defaults(func=run)


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    if args.generate_password:
        return secrets.token_urlsafe(18), True
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n"), False
    first = getpass.getpass("password for the owner: ")
    if getpass.getpass("again: ") != first:
        raise BadRequest("the passwords differ")
    return first, False


async def run_bootstrap(
    config: Config, email: str, slug: str, password: str, *, pool: Pool | None = None
) -> Bootstrapped:
    async with open_authority(config, pool=pool) as svc:
        return await bootstrap(svc.account_store, svc.accounts, svc.sessions, email, password, slug)


def print_bootstrapped(done: Bootstrapped) -> None:
    print(f"owner:   {done.user.email} (user id {done.user.id})")
    print(f"org:     {done.org.slug} (org id {done.org.id})")
    print(f"session: {done.session_secret}")
    print("(shown once: the session and password are stored only as hashes)")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    password, generated = _password(args)
    check_password(password)
    if generated:
        # Before anything is made: a bootstrap cut short is finished by running it again with this password.
        print(f"password: {password}", flush=True)
    done = asyncio.run(run_bootstrap(config, args.email, args.org, password))
    print_bootstrapped(done)
    return 0
