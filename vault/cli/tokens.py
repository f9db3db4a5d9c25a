"""``cvault tokens``: inspect and attenuate token bundles (offline), and the authority-backed token commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from vault.errors import BadRequest, InvalidToken
from vault.macaroon import Bundle, Macaroon, decode_token, encode_bundle, from_json
from vault.macaroon.caveats import ThirdParty, ValidityWindow

from .output import duration, print_json


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
    att.set_defaults(func=cmd_attenuate)


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
        if len(given) > 1:
            ignored = " and ".join(n for n, _ in given[1:])
            print(f"cvault: using the token from {name}; ignoring {ignored}", file=sys.stderr)
        return value
    if stdin_allowed and not sys.stdin.isatty():
        text = sys.stdin.read().strip()
        if text:
            return text
    raise BadRequest("no token given: pass it as an argument, with --token, in $CVAULT_TOKEN, or on stdin")


def parse_bundle_text(text: str) -> list[Macaroon]:
    """Parse a bundle for humans: say which token is broken, and that it is truncated or corrupt."""
    text = text.strip()
    for scheme in ("FlyV1 ", "Bearer "):
        if text.startswith(scheme):
            text = text[len(scheme) :]
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
        "kind": "discharge" if token.is_proof else "permission",
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
    print(encode_bundle(out.tokens))
    return 0
