"""``cvault secrets`` and ``cvault vaults``: operators' commands on the store, attenuated on use.

Values are read from ``--from-file``, from stdin, or (on a terminal) from a
prompt that does not echo; they are never taken as an argument (which would put
them in the shell history and the process list) and only ``get`` prints one.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from vault.client import Client
from vault.client.models import to_json
from vault.errors import BadRequest, NotFound, OutcomeUnknown

from .client_options import add_client_options, client_command, default_vault, runs_with_client
from .output import print_json, print_table

__all__ = ["register"]

_MAX_VALUE_BYTES = 64 * 1024


def _vault(args: argparse.Namespace) -> str:
    return str(args.vault or default_vault())


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vault", help="the vault (default: $CVAULT_VAULT or 'default')")
    add_client_options(p)


def _versions(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BadRequest("--versions takes comma-separated numbers, e.g. 3,4") from None


def read_value(args: argparse.Namespace, *, prompt: str) -> str:
    """The secret value from ``--from-file``, stdin, or a no-echo prompt; never from an argument."""
    if args.from_file is not None:
        try:
            data = Path(args.from_file).read_bytes()[: _MAX_VALUE_BYTES + 1]
        except OSError as exc:
            raise BadRequest(f"cannot read {args.from_file}: {exc.strerror}") from None
    elif sys.stdin.isatty():
        data = getpass.getpass(prompt).encode()
    else:
        data = sys.stdin.buffer.read(_MAX_VALUE_BYTES + 1)
        # `echo value | cvault secrets set` adds one newline nobody meant to store.
        data = data[:-1] if data.endswith(b"\n") and not data.endswith(b"\n\n") else data
    if len(data) > _MAX_VALUE_BYTES:
        raise BadRequest(f"the value is larger than {_MAX_VALUE_BYTES // 1024} KiB")
    if not data:
        raise BadRequest("the value is empty: give it on stdin or with --from-file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the value is not UTF-8 text") from None


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("secrets", help="set, read and manage secrets")
    ssub = parser.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND")
    ssub.required = True

    p = ssub.add_parser("set", help="write a new version (value on stdin or --from-file)")
    p.add_argument("name")
    p.add_argument("--from-file", metavar="F", help="read the value from this file")
    p.add_argument("--cas", type=int, metavar="N", help="only if the current version is N (0: only if new)")
    p.add_argument("--max-versions", type=int, metavar="N", help="keep at most N versions")
    p.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="retry a write whose outcome was unknown (exit status 5) with the key it printed: stored at most once",
    )
    _common(p)
    p.set_defaults(func=client_command(_set))

    p = ssub.add_parser("get", help="print a secret's value")
    p.add_argument("name")
    p.add_argument("--version", type=int, metavar="N", help="a pinned version (default: current)")
    p.add_argument("--pending", action="store_true", help="the staged (pending) version")
    _common(p)
    p.set_defaults(func=client_command(_get))

    p = ssub.add_parser("list", help="list secret names (never values)")
    p.add_argument("--prefix", default="", help="only names starting with this")
    _common(p)
    p.set_defaults(func=client_command(_list))

    p = ssub.add_parser("versions", help="show a secret's versions")
    p.add_argument("name")
    _common(p)
    p.set_defaults(func=client_command(_versions_cmd))

    for kind, text in (
        ("delete", "soft-delete versions (default: the current one)"),
        ("undelete", "restore soft-deleted versions"),
        ("destroy", "remove versions' ciphertext for good (--all: the whole secret)"),
    ):
        p = ssub.add_parser(kind, help=text)
        p.add_argument("name")
        p.add_argument("--versions", metavar="N,M", help="comma-separated versions")
        if kind == "destroy":
            p.add_argument("--all", action="store_true", help="destroy the secret and every version")
        _common(p)
        p.set_defaults(func=client_command(_versions_action), kind=kind)

    p = ssub.add_parser(
        "rotate",
        help="stage a new value as pending (stdin or --from-file); --promote makes it current",
        description=(
            "Staged rotation: `cvault secrets rotate NAME` writes the new value as pending (readers keep the "
            "current one); `cvault secrets rotate NAME --promote` makes the pending value current and keeps the "
            "previous one readable. With --from-file and --promote, both happen."
        ),
    )
    p.add_argument("name")
    p.add_argument("--from-file", metavar="F", help="read the new value from this file")
    p.add_argument("--promote", action="store_true", help="make the pending version current")
    _common(p)
    p.set_defaults(func=client_command(_rotate))

    vparser: argparse.ArgumentParser = sub.add_parser("vaults", help="list, create and delete vaults")
    vsub = vparser.add_subparsers(dest="vaults_command", metavar="SUBCOMMAND")
    vsub.required = True
    p = vsub.add_parser("list", help="list the org's vaults")
    runs_with_client(p, _vaults_list)
    for name, text in (("create", "create a vault"), ("delete", "delete an empty vault")):
        p = vsub.add_parser(name, help=text)
        p.add_argument("name")
        add_client_options(p)
        p.set_defaults(func=client_command(_vaults_create if name == "create" else _vaults_delete))


async def _set(client: Client, args: argparse.Namespace) -> int:
    value = read_value(args, prompt=f"value for {args.name}: ")
    vault = _vault(args)
    try:
        reply = await client.store.write_secret(
            vault, args.name, value, cas=args.cas, max_versions=args.max_versions, idempotency_key=args.idempotency_key
        )
    except OutcomeUnknown as exc:
        key = exc.idempotency_key
        raise OutcomeUnknown(
            f"the write of {vault}/{args.name} may have been stored or not: an answer was lost and the retries "
            f"could not tell. Do not simply write it again (that could store it twice): run the same command with "
            f"--idempotency-key {key}, which stores it at most once and prints its version",
            idempotency_key=key,
        ) from exc
    if args.json:
        print_json(to_json(reply))
    else:
        print(f"{vault}/{args.name}: version {reply.version} written")
    return 0


async def _get(client: Client, args: argparse.Namespace) -> int:
    reply = await client.store.read_secret(_vault(args), args.name, version=args.version, pending=args.pending)
    if args.json:
        print_json(to_json(reply))
    else:
        sys.stdout.write(reply.value)
        if sys.stdout.isatty():
            sys.stdout.write("\n")
    return 0


async def _list(client: Client, args: argparse.Namespace) -> int:
    items = [item async for item in client.store.iter_secrets(_vault(args), prefix=args.prefix)]
    if args.json:
        print_json(to_json(items))
    else:
        print_table(["NAME", "VERSION", "UPDATED"], [[i.name, i.current_version, i.updated_at] for i in items])
    return 0


async def _versions_cmd(client: Client, args: argparse.Namespace) -> int:
    meta = await client.store.metadata(_vault(args), args.name)
    if args.json:
        print_json(to_json(meta))
        return 0
    print(f"{_vault(args)}/{meta.name}: current version {meta.current_version}")
    rows = [[v.version, v.state, v.stage, v.created_at, v.created_by_token] for v in meta.versions]
    print_table(["VERSION", "STATE", "STAGE", "CREATED", "TOKEN"], rows)
    return 0


async def _versions_action(client: Client, args: argparse.Namespace) -> int:
    vault = _vault(args)
    kind = args.kind
    done = kind.replace("destroy", "destroye") + "d"
    if kind == "destroy" and args.all:
        await client.store.destroy_secret(vault, args.name)
        if args.json:
            print_json({"vault": vault, "name": args.name, "action": kind, "all": True})
        else:
            print(f"{vault}/{args.name}: every version {done}")
        return 0
    versions = _versions(args.versions)
    if versions is None:
        if kind != "delete":
            raise BadRequest(f"say which versions to {kind} with --versions N,M")
        current = (await client.store.metadata(vault, args.name)).current_version
        if not current:
            raise BadRequest(f"{args.name} has no current version to delete")
        versions = [int(current)]
    call = {
        "delete": client.store.delete_versions,
        "undelete": client.store.undelete_versions,
        "destroy": client.store.destroy_versions,
    }[kind]
    changed = await call(vault, args.name, versions)
    unchanged = sorted(set(versions) - set(changed))
    if not changed:
        raise NotFound(
            f"version(s) {', '.join(map(str, versions))} of {args.name} not {done}: they do not exist or already "
            f"were (`cvault secrets versions {args.name}` lists them)"
        )
    if args.json:
        print_json({"vault": vault, "name": args.name, "action": kind, "requested": versions, "changed": changed})
    else:
        if changed:
            print(f"{vault}/{args.name}: version(s) {', '.join(map(str, changed))} {done}")
        if unchanged:
            print(
                f"cvault: {vault}/{args.name}: version(s) {', '.join(map(str, unchanged))} not {done}: they do not "
                f"exist or already were (`cvault secrets versions {args.name}` lists them)",
                file=sys.stderr,
            )
    return 0


async def _rotate(client: Client, args: argparse.Namespace) -> int:
    vault = _vault(args)
    result: dict[str, Any] = {}
    if not args.promote or args.from_file is not None:
        value = read_value(args, prompt=f"new value for {args.name}: ")
        staged = await client.store.write_secret(vault, args.name, value, pending=True)
        result["pending"] = to_json(staged)
        if not args.json:
            print(f"{vault}/{args.name}: version {staged.version} staged as pending")
    if args.promote:
        promoted = await client.store.promote(vault, args.name)
        result["promoted"] = to_json(promoted)
        if not args.json:
            print(f"{vault}/{args.name}: version {promoted.current} is current (previous: {promoted.previous})")
    if args.json:
        print_json(result)
    return 0


async def _vaults_list(client: Client, args: argparse.Namespace) -> int:
    vaults = await client.store.list_vaults()
    if args.json:
        print_json(to_json(vaults))
    else:
        print_table(["VAULT", "CREATED"], [[v.name, v.created_at] for v in vaults])
    return 0


async def _vaults_create(client: Client, args: argparse.Namespace) -> int:
    reply = await client.store.create_vault(args.name)
    print_json(to_json(reply)) if args.json else print(f"vault {reply.name} created")
    return 0


async def _vaults_delete(client: Client, args: argparse.Namespace) -> int:
    await client.store.delete_vault(args.name)
    print_json({"deleted": args.name}) if args.json else print(f"vault {args.name} deleted")
    return 0
