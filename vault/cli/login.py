"""``cvault login`` / ``cvault logout``: a login session saved for the other commands.

The password is read without echo (or from stdin with ``--password-stdin``),
sent once to the authority, and never stored; only the session is saved, in the
user's config directory with mode 0600.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
import time
from typing import Any

from vault.client import Client
from vault.client.authority_models import Session
from vault.client.blocking_http import BlockingHTTP, run_blocking
from vault.client.session_file import SessionFile
from vault.errors import BadRequest, Unauthenticated

from .client_options import add_client_options, client_settings
from .output import print_json

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("login", help="log in to the authority and save the session")
    p.add_argument("--email", help="your email (prompted for if missing)")
    p.add_argument("--authority", metavar="URL", help="the authority (default: $CVAULT_AUTHORITY_URL)")
    p.add_argument("--store", metavar="URL", help="the store to remember with the session (default: $CVAULT_STORE_URL)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (for scripts)")
    add_client_options(p)
    p.set_defaults(func=login)

    p = sub.add_parser("logout", help="revoke the saved session and delete it")
    add_client_options(p)
    p.set_defaults(func=logout)


def _password(args: argparse.Namespace) -> str:
    if not args.password_stdin and not sys.stdin.isatty():
        raise BadRequest("no terminal to ask for the password on: pipe it in with --password-stdin")
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    if not password:
        raise BadRequest("no password given")
    return password


def login(args: argparse.Namespace) -> int:
    settings = client_settings(args)
    authority_url = (args.authority or settings.authority_url).rstrip("/")
    store_url = (args.store or settings.store_url).rstrip("/")
    if not args.email and not sys.stdin.isatty():
        raise BadRequest("no terminal to ask for the email on: give --email (and --password-stdin)")
    email = args.email or input("email: ").strip()
    if not email:
        raise BadRequest("no email given")
    password = _password(args)

    async def go() -> Session:
        async with Client(
            store_url=store_url, authority_url=authority_url, http=BlockingHTTP(ca_cert=settings.ca_cert)
        ) as client:
            return await client.authority.login(email, password)

    reply = run_blocking(go())
    save_session(SessionFile(), authority_url, store_url, email, reply)
    if args.json:
        print_json({"email": email, "user_id": reply.user_id, "authority_url": authority_url})
    else:
        print(f"logged in to {authority_url} as {email}; session saved in {settings.session_file.path}")
    return 0


def save_session(file: SessionFile, authority_url: str, store_url: str, email: str, session: Session) -> None:
    file.save(
        {
            "authority_url": authority_url,
            "store_url": store_url,
            "email": email,
            "user_id": session.user_id,
            "session": session.session,
            "expires_at": session.expires_at,
            "saved_at": int(time.time()),
        }
    )


def logout(args: argparse.Namespace) -> int:
    settings = client_settings(args)
    if settings.credentials.session:

        async def go() -> None:
            async with Client(
                store_url=settings.store_url,
                authority_url=settings.authority_url,
                credentials=settings.credentials,
                http=BlockingHTTP(ca_cert=settings.ca_cert),
            ) as client:
                await client.authority.logout()

        # A session the authority no longer accepts (expired, revoked) is already dead:
        # forget it anyway, or no command could get rid of it.
        with contextlib.suppress(Unauthenticated):
            run_blocking(go())
    removed = settings.session_file.delete()
    print("logged out" if removed or settings.credentials.session else "not logged in")
    return 0
