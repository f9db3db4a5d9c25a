"""``cvault workloads``: an org's trusted OIDC issuers and its workload bindings (docs/workload-identity.md).

An owner's login session manages them::

    cvault workloads issuers add acme https://token.actions.githubusercontent.com
    cvault workloads bind acme deploy --issuer https://token.actions.githubusercontent.com \\
        --claim sub='repo:acme/api:ref:refs/heads/main' --mask r --vault prod
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vault.client import Client
from vault.client.workloads import WorkloadsClient
from vault.errors import BadRequest, NotFound

from .client_options import runs_with_client
from .orgs import resolve_org
from .output import print_json, print_table

__all__ = ["register"]

_MAX_JWKS_FILE = 64 * 1024


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("workloads", help="workload identity: OIDC issuers and bindings")
    wsub = parser.add_subparsers(dest="workloads_command", metavar="SUBCOMMAND")
    wsub.required = True

    issuers = wsub.add_parser("issuers", help="the OIDC issuers an organization trusts")
    isub = issuers.add_subparsers(dest="issuers_command", metavar="SUBCOMMAND")
    isub.required = True
    p = isub.add_parser("add", help="trust an issuer (keys by OIDC discovery, a JWKS URL, or a JWKS file)")
    p.add_argument("org", help="org id or slug")
    p.add_argument("issuer", help="the issuer URL, exactly as its JWTs' 'iss' claim")
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--jwks-url", help="the JWKS URL (default: found by OIDC discovery)")
    keys.add_argument("--jwks-file", type=Path, help="static public keys (a JWKS document) for an unreachable issuer")
    p.add_argument(
        "--algorithm", action="append", choices=["RS256", "ES256", "EdDSA"], help="allowed algorithm (default: all)"
    )
    runs_with_client(p, _add_issuer)
    p = isub.add_parser("list", help="the issuers an organization trusts")
    p.add_argument("org", help="org id or slug")
    runs_with_client(p, _list_issuers)
    p = isub.add_parser("remove", help="stop trusting an issuer; its bindings go, and their discharges stop")
    p.add_argument("org", help="org id or slug")
    p.add_argument("issuer", help="the issuer URL or id")
    runs_with_client(p, _remove_issuer)

    p = wsub.add_parser("bind", help="let an issuer's JWTs matching claim rules discharge the org's caveat")
    p.add_argument("org", help="org id or slug")
    p.add_argument("name", help="the binding's name (Vault's role: '<org slug>/<name>')")
    p.add_argument("--issuer", required=True, help="the issuer URL or id")
    p.add_argument(
        "--claim",
        action="append",
        required=True,
        metavar="NAME=PATTERN",
        help="a claim rule ('*' matches any run of characters); repeat; 'sub' is required",
    )
    p.add_argument("--mask", required=True, help="what the discharges grant, at most yours (e.g. r)")
    p.add_argument("--audience", help="required 'aud' (default: the authority's URL)")
    p.add_argument("--vault", action="append", help="only these vaults (repeat)")
    p.add_argument("--secret", action="append", help="only secrets starting with these prefixes (repeat)")
    p.add_argument("--ttl", type=int, help="seconds a discharge lives (never beyond the JWT)")
    runs_with_client(p, _bind)
    p = wsub.add_parser("list", help="an organization's workload bindings")
    p.add_argument("org", help="org id or slug")
    runs_with_client(p, _list)
    p = wsub.add_parser("show", help="one binding")
    p.add_argument("org", help="org id or slug")
    p.add_argument("name", help="binding name or id")
    runs_with_client(p, _show)
    p = wsub.add_parser("unbind", help="delete a binding; stores refuse its discharges within a second")
    p.add_argument("org", help="org id or slug")
    p.add_argument("name", help="binding name or id")
    runs_with_client(p, _unbind)


def _api(client: Client) -> WorkloadsClient:
    return WorkloadsClient(client.http, client.authority_url, client.session_header())


async def _add_issuer(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    body: dict[str, Any] = {"issuer": args.issuer}
    if args.jwks_url:
        body["jwks_url"] = args.jwks_url
    if args.jwks_file:
        try:
            text = args.jwks_file.read_text(encoding="utf-8")[: _MAX_JWKS_FILE + 1]
            body["jwks"] = json.loads(text)
        except (OSError, ValueError) as exc:
            raise BadRequest(f"--jwks-file: cannot read a JWKS document from {args.jwks_file} ({exc})") from None
    if args.algorithm:
        body["algorithms"] = args.algorithm
    issuer = await _api(client).add_issuer(org.id, body)
    print_json(issuer) if args.json else print(f"{org.slug} now trusts {issuer['issuer']} (issuer {issuer['id']})")
    return 0


async def _list_issuers(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    issuers = await _api(client).issuers(org.id)
    if args.json:
        print_json(issuers)
    else:
        rows = [
            [
                i["id"],
                i["issuer"],
                i["jwks_url"] or ("static" if i["static_keys"] else "discovery"),
                ",".join(i["algorithms"]),
            ]
            for i in issuers
        ]
        print_table(["ID", "ISSUER", "KEYS", "ALGORITHMS"], rows)
    return 0


async def _remove_issuer(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    api = _api(client)
    found = [i for i in await api.issuers(org.id) if args.issuer in (i["id"], i["issuer"])]
    if not found:
        raise NotFound(f"{org.slug} trusts no issuer {args.issuer!r}; `cvault workloads issuers list` shows them")
    revoked = await api.remove_issuer(org.id, found[0]["id"])
    if args.json:
        print_json({"removed": found[0]["id"], "revoked_bindings": revoked})
    else:
        print(f"{org.slug} no longer trusts {found[0]['issuer']}; {len(revoked)} binding(s) revoked")
    return 0


def _claims(pairs: list[str]) -> dict[str, str]:
    claims: dict[str, str] = {}
    for pair in pairs:
        name, sep, pattern = pair.partition("=")
        if not sep or not name:
            raise BadRequest(f"--claim {pair!r}: expected NAME=PATTERN")
        claims[name] = pattern
    return claims


async def _bind(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    body: dict[str, Any] = {"name": args.name, "issuer": args.issuer, "claims": _claims(args.claim), "mask": args.mask}
    optional = {"audience": args.audience, "vaults": args.vault, "secrets": args.secret, "ttl": args.ttl}
    body.update({key: value for key, value in optional.items() if value is not None})
    binding = await _api(client).bind(org.id, body)
    if args.json:
        print_json(binding)
    else:
        print(f"bound {binding['name']} in {org.slug} (binding {binding['id']}, mask {binding['mask']})")
    return 0


async def _list(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    bindings = await _api(client).bindings(org.id)
    if args.json:
        print_json(bindings)
    else:
        rows = [
            [b["name"], b["issuer"], " ".join(f"{k}={v}" for k, v in b["claims"].items()), b["mask"], b["ttl"]]
            for b in bindings
        ]
        print_table(["NAME", "ISSUER", "CLAIMS", "MASK", "TTL"], rows)
    return 0


async def _show(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    binding = await _api(client).binding(org.id, args.name)
    if args.json:
        print_json(binding)
    else:
        for key in ("id", "name", "issuer", "audience", "mask", "vaults", "secrets", "ttl", "created_at"):
            print(f"{key}: {binding[key]}")
        for name, pattern in binding["claims"].items():
            print(f"claim {name}: {pattern}")
    return 0


async def _unbind(client: Client, args: argparse.Namespace) -> int:
    org = await resolve_org(client, args.org)
    revoked = await _api(client).unbind(org.id, args.name)
    print_json({"revoked": revoked}) if args.json else print(f"binding {args.name} ({revoked}) deleted and revoked")
    return 0
