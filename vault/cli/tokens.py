"""``cvault tokens``: inspect and attenuate token bundles (offline), and the authority-backed token commands."""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import time
from dataclasses import replace
from typing import Any

from vault.authorization import pasted_credential
from vault.client import Client, TokenBundle
from vault.client.authority_models import PermissionToken, ServiceToken
from vault.client.client import CLOCK_SKEW
from vault.client.models import to_json
from vault.errors import BadRequest, InvalidToken
from vault.macaroon import Bundle, Macaroon, decode_token, encode_bundle, from_json
from vault.macaroon.caveats import ClientCIDR, ThirdParty, ValidityWindow

from .client_options import runs_with_client
from .orgs import resolve_org
from .output import add_output_option, duration, print_json, print_table
from .store import print_token


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "tokens",
        help="inspect, attenuate and manage tokens",
        description="Inspect, attenuate and manage cvault token bundles.",
    )
    tsub = parser.add_subparsers(dest="tokens_command", metavar="SUBCOMMAND")
    tsub.required = True

    debug = tsub.add_parser(
        "debug",
        help="show every macaroon in a bundle: location, id, caveats, time left",
        description=(
            "Show each macaroon in a bundle with its location, token id, kind, caveats and the time left on "
            "each validity window. The bundle is read from TOKEN, --token, $CVAULT_TOKEN or stdin, in that order."
        ),
    )
    _add_token_source(debug)
    debug.add_argument("--json", action="store_true", help="print machine-readable JSON")
    debug.set_defaults(func=cmd_debug)

    att = tsub.add_parser(
        "attenuate",
        help="append caveats to every permission token in a bundle (offline)",
        description=(
            'Append caveats, given as JSON [{"type": "Vaults", "body": {"prod": "r"}}, ...] on stdin or in -f FILE, '
            "to each permission token of the bundle; discharges pass through unchanged. Prints the new bundle."
        ),
    )
    _add_token_source(att)
    att.add_argument("-f", "--file", help="read the caveats JSON from FILE instead of stdin")
    att.add_argument("--json", action="store_true", help="print machine-readable JSON")
    att.set_defaults(func=cmd_attenuate)

    create = tsub.add_parser(
        "create",
        help="create a permission token (or, with --service, a service token) for an org",
        description=(
            "Create a permission token with your login session. --service strips it at once into a service "
            "token for a workload (no login needed to use it); --cidr binds the result to client addresses."
        ),
    )
    create.add_argument("--org", required=True, help="org id or slug")
    create.add_argument("--mask", help="permission letters (default: your role's)")
    create.add_argument(
        "--ttl",
        type=int,
        metavar="SECONDS",
        help="lifetime of the token (with --service: of the service token, a window strip keeps)",
    )
    create.add_argument("--service", action="store_true", help="strip it into a service token")
    _add_cidr(create)
    add_output_option(create, "the token")
    runs_with_client(create, _create)

    strip = tsub.add_parser(
        "strip",
        help="turn a permission token into a service token (uses your login session)",
        description="The permission token is read from TOKEN, --token, $CVAULT_TOKEN or stdin.",
    )
    _add_token_source(strip)
    _add_cidr(strip)
    add_output_option(strip, "the token")
    runs_with_client(strip, _strip)

    revoke = tsub.add_parser("revoke", help="revoke a token and every token stripped from it")
    revoke.add_argument("id", help="the token id (see `cvault tokens list` or `cvault tokens debug`)")
    runs_with_client(revoke, _revoke)

    listing = tsub.add_parser("list", help="your permission and service tokens")
    runs_with_client(listing, _list)


def _add_cidr(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cidr",
        action="append",
        default=[],
        metavar="NET",
        help="only usable from this network, e.g. 10.0.0.0/8 or 127.0.0.1 (repeatable)",
    )


def _add_token_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("token", nargs="?", metavar="TOKEN", help="the token bundle (cv1_...,cv1_...)")
    p.add_argument("--token", dest="token_opt", metavar="TOKEN", help="the token bundle, as an option")


def read_token_source(args: argparse.Namespace, *, stdin_allowed: bool = True) -> str:
    """The bundle from the argument, ``--token``, ``$CVAULT_TOKEN`` or stdin; never ignore one silently."""
    given = [
        (name, value)
        for name, value in (
            ("the TOKEN argument", args.token),
            ("--token", args.token_opt),
            ("$CVAULT_TOKEN", os.environ.get("CVAULT_TOKEN")),
        )
        if value
    ]
    if args.token and args.token_opt:
        raise BadRequest("give the token either as an argument or with --token, not both")
    if given:
        name, value = given[0]
        ignored = [n for n, _ in given[1:]]
        if stdin_allowed and _stdin_has_text():
            ignored.append("the token on stdin")
        if ignored:
            print(f"cvault: using the token from {name}; ignoring {' and '.join(ignored)}", file=sys.stderr)
        return value
    if stdin_allowed and not sys.stdin.isatty():
        text = sys.stdin.read().strip()
        if text:
            return text
    raise BadRequest("no token given: pass it as an argument, with --token, in $CVAULT_TOKEN, or on stdin")


def _stdin_has_text() -> bool:
    """Whether stdin (a pipe or file, not a terminal) holds something right now; it is consumed."""
    if sys.stdin.isatty():
        return False
    try:
        ready, _, _ = select.select([sys.stdin], [], [], 0.05)
    except (OSError, ValueError):
        return False
    return bool(ready) and bool(sys.stdin.read(64 * 1024).strip())


def parse_bundle_text(text: str) -> list[Macaroon]:
    """Parse a bundle for humans: say which token is broken, and that it is truncated or corrupt.

    Pasted bare or as an ``Authorization`` value (``Bearer cv1_...``), read by the services' grammar.
    """
    text = pasted_credential(text)
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise InvalidToken("the token is empty")
    tokens = []
    for i, part in enumerate(parts, 1):
        try:
            tokens.append(decode_token(part))
        except InvalidToken:
            where = f"token #{i} of {len(parts)}" if len(parts) > 1 else "the token"
            raise InvalidToken(
                f"{where} ({part[:8]}...) is truncated or corrupt: it could not be decoded; copy it again in full"
            ) from None
    return tokens


def token_kind(token: Macaroon) -> str:
    """What a token is, offline, from the third parties it needs (``docs/api.md``).

    A store token needs the authority's org discharger (``<authority>/org``); a
    permission token needs a login discharge (``<authority>/login``); a service
    token needs none; a discharge is a proof.
    """
    if token.is_proof:
        return "discharge"
    needs = {c.location.rstrip("/").rsplit("/", 1)[-1] for c in token.third_party_tickets()}
    if "org" in needs:
        return "store"
    if "login" in needs:
        return "permission"
    return "service" if not needs else "third-party"


def describe(token: Macaroon, now: int) -> dict[str, Any]:
    windows = []
    for c in token.unverified_caveats:
        if isinstance(c, ValidityWindow):
            if now > c.not_after:
                status = f"expired {duration(now - c.not_after)} ago"
            elif now < c.not_before:
                status = f"not valid for another {duration(c.not_before - now)}"
            else:
                status = f"expires in {duration(c.not_after - now)}"
            windows.append({"not_before": c.not_before, "not_after": c.not_after, "status": status})
    return {
        "kind": token_kind(token),
        "location": token.location,
        "token_id": token.token_id,
        "caveats": [c.describe() for c in token.unverified_caveats],
        "third_party": [c.location for c in token.unverified_caveats if isinstance(c, ThirdParty)],
        "validity": windows,
    }


def cmd_debug(args: argparse.Namespace) -> int:
    tokens = parse_bundle_text(read_token_source(args))
    now = int(time.time())
    described = [describe(t, now) for t in tokens]
    if args.json:
        print_json(described)
        return 0
    for i, d in enumerate(described, 1):
        print(f"#{i} {d['kind']} token  id {d['token_id']}")
        print(f"   location  {d['location']}")
        for w in d["validity"]:
            print(f"   valid     {w['status']}")
        for loc in d["third_party"]:
            print(f"   needs     a discharge from {loc}")
        print("   caveats   " + json.dumps(d["caveats"], indent=None, sort_keys=True))
    return 0


def cmd_attenuate(args: argparse.Namespace) -> int:
    bundle_text = read_token_source(args, stdin_allowed=False)
    try:
        raw = open(args.file).read() if args.file else sys.stdin.read()  # noqa: SIM115
    except OSError as exc:
        raise BadRequest(f"cannot read caveats file: {exc.strerror}") from None
    try:
        caveats = from_json(json.loads(raw))
    except json.JSONDecodeError:
        raise BadRequest('caveats must be JSON, for example [{"type": "Vaults", "body": {"prod": "r"}}]') from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    tokens = parse_bundle_text(bundle_text)
    out = Bundle(tuple(t if t.is_proof else t.attenuate(caveats) for t in tokens))
    if args.json:
        print_json({"token": encode_bundle(out.tokens)})
    else:
        print(encode_bundle(out.tokens))
    return 0


def _with_cidr(token_text: str, networks: list[str]) -> str:
    if not networks:
        return token_text
    try:
        caveat = ClientCIDR(tuple(networks))
    except ValueError as exc:
        raise BadRequest(f"--cidr: {exc}") from None
    held = TokenBundle.parse(token_text, what="token")
    return Bundle((held.token.attenuate([caveat]), *held.discharges)).encode()


async def _create(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    reply: PermissionToken | ServiceToken = await client.authority.create_token(org.id, mask=args.mask, ttl=args.ttl)
    what = f"permission token for {org.slug}"
    if args.service:
        permission = TokenBundle.parse(reply.token, what="permission token")
        if args.ttl is not None:
            # Strip drops the authority's issuance window, so the lifetime asked for is bound as the
            # holder's own window (appended after the login caveat), which strip keeps. It starts a
            # little early, like every window the client appends (the authority's clock may lag ours).
            now = int(time.time())
            window = ValidityWindow(now - CLOCK_SKEW, now + args.ttl)
            permission = replace(permission, token=permission.token.attenuate([window]))
        reply = await client.authority.strip(permission)
        what = f"service token for {org.slug} (stripped from {permission.token_id})"
    reply = replace(reply, token=_with_cidr(reply.token, args.cidr))
    if args.cidr:
        what += f", usable only from {', '.join(args.cidr)}"
    what += f", expires {reply.expires_at}" if reply.expires_at else ", no expiry (revoke it when done)"
    print_token(reply, args, what)
    return 0


async def _strip(client: Client, args: argparse.Namespace) -> int:
    permission = TokenBundle.parse(read_token_source(args), what="permission token")
    reply = await client.authority.strip(permission)
    reply = replace(reply, token=_with_cidr(reply.token, args.cidr))
    print_token(reply, args, f"service token stripped from {permission.token_id}")
    return 0


async def _revoke(client: Client, args: argparse.Namespace) -> int:
    revoked = await client.authority.revoke(args.id)
    if args.json:
        print_json({"revoked": revoked})
    elif revoked:
        print(f"revoked {len(revoked)} token(s): {', '.join(revoked)}")
    else:
        print(f"token {args.id} was already revoked (and every token stripped from it); nothing changed")
    return 0


async def _list(client: Client, args: argparse.Namespace) -> int:
    tokens = await client.authority.list_tokens()
    if args.json:
        print_json(to_json(tokens))
        return 0
    rows = [[t.id, t.org, t.kind, t.parent or "", t.expires_at or "", t.revoked_at or ""] for t in tokens]
    print_table(["ID", "ORG", "KIND", "PARENT", "EXPIRES", "REVOKED"], rows)
    return 0
