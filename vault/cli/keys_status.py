"""``cvault keys status``: every key the services hold, its id, state, age and what it protects.

States: a KEK is ``active`` (wraps new keys), ``draining`` (a rotation is moving keys
off it) or ``retired``. A signing or ticket key is ``current`` (mints or seals what
is new), ``accepted`` (still verifies or opens what it made) or ``retired``. The
master key is never stored, so it has no age; when one is configured, each KEK says
whether it is wrapped under it or under ``CVAULT_MASTER_KEY_PREVIOUS`` (mid-rotation).

A warning (on stderr, and in ``warnings`` with ``--json``) names every current key
older than ``key_max_age`` (``CVAULT_KEY_MAX_AGE`` seconds, 365 days by default).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from .options import add_config_option, config_from_args

__all__ = ["KeyLine", "register_status"]

SCHEMAS = ("store", "authority")

# What each purpose's keys protect (docs/keys.md has the hierarchy).
PROTECTS = {
    "store-root": "store tokens of one org (signing)",
    "store-enroll": "enrolment challenges (signing)",
    "store-ticket": "the store's X25519 key: tickets of the org caveat in every store token",
    "store-dek": "secret values (one data key per secret version)",
    "authority-root": "permission and service tokens (signing)",
    "authority-login-x25519": "tickets to <authority>/login (login discharges)",
    "authority-org-x25519": "tickets to <authority>/org (org discharges; stores seal to its public key)",
    "authority-issuer-x25519": "the authority's own login tickets (first party)",
}


@dataclass(frozen=True)
class KeyLine:
    id: str
    schema: str | None
    kind: str  # master | kek | key | data-keys
    state: str
    created_at: str | None
    age_seconds: int | None
    protects: str
    count: int = 1


def register_status(commands: Any) -> None:
    status: argparse.ArgumentParser = commands.add_parser(
        "status",
        help="every key with its id, state, age and what it protects",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    status.add_argument(
        "--schema", choices=SCHEMAS, help="only this service's keys (a service's database role reads only its own)"
    )
    add_config_option(status)
    status.set_defaults(func=run_status)


def run_status(args: argparse.Namespace) -> int:
    schemas = SCHEMAS if args.schema is None else (args.schema,)
    lines, warnings = asyncio.run(collect(config_from_args(args), schemas))
    if args.json:
        print(json.dumps({"keys": [asdict(line) for line in lines], "warnings": warnings}, indent=2))
    else:
        print(f"{'KEY':<34} {'STATE':<9} {'AGE':>7}  PROTECTS")
        for line in lines:
            print(f"{line.id:<34} {line.state:<9} {_age(line.age_seconds):>7}  {line.protects}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def master_key_id(key: bytes) -> str:
    """A public name for a master key: a hash prefix, which says nothing about the key."""
    return hashlib.sha256(b"cvault/master-key-id/v1" + key).hexdigest()[:12]


async def collect(config: Any, schemas: tuple[str, ...] = SCHEMAS) -> tuple[list[KeyLine], list[str]]:
    from vault.config import require_database_url, require_master_keys
    from vault.crypto.keyring import MasterKeys, unwrap_kek
    from vault.errors import DecryptionError
    from vault.storage.key_status import read_key_status
    from vault.storage.pool import close_pool, create_pool
    from vault.storage.privileges import privilege_errors

    masters: MasterKeys | None = None
    if config.master_key is not None or config.master_key_command is not None:
        masters = require_master_keys(config)
    lines: list[KeyLine] = []
    if masters is not None:
        lines.append(
            KeyLine(
                f"master:{master_key_id(masters.current.key)}",
                None,
                "master",
                "current",
                None,
                None,
                "key-encryption keys of both schemas",
            )
        )
        for previous in masters.previous:
            lines.append(
                KeyLine(
                    f"master:{master_key_id(previous.key)}",
                    None,
                    "master",
                    "previous",
                    None,
                    None,
                    "KEKs not yet re-wrapped by `cvault keys rotate-master`",
                )
            )

    def under(schema: str, version: int, wrapped: bytes) -> str:
        if masters is None:
            return ""
        for label, master in (("current", masters.current), *(("previous", m) for m in masters.previous)):
            try:
                unwrap_kek(master, schema, version, wrapped)
                return f"; under the {label} master key"
            except DecryptionError:
                continue
        return "; under an unknown master key"

    pool = await create_pool(require_database_url(config), min_size=1, max_size=2)
    try:
        for schema in schemas:
            async with privilege_errors(pool, schema):
                found = await read_key_status(pool, schema)
            for kek in found.keks:
                lines.append(
                    KeyLine(
                        f"{schema}/kek/{kek.version}",
                        schema,
                        "kek",
                        kek.state,
                        kek.created_at.isoformat(),
                        int(kek.age_seconds),
                        f"{kek.keys} wrapped keys of {schema}{under(schema, kek.version, kek.wrapped)}",
                    )
                )
            newest: dict[tuple[str, int | None], int] = {}
            for key in found.keys:
                if key.key_id is not None and key.retired_at is None:
                    group = (key.purpose, key.org_id)
                    newest[group] = max(newest.get(group, 0), key.key_id)
            for key in found.keys:
                protects = PROTECTS.get(key.purpose, key.purpose)
                if key.key_id is None:
                    lines.append(
                        KeyLine(
                            f"{schema}/{key.purpose}",
                            schema,
                            "data-keys",
                            "-",
                            key.created_at.isoformat(),
                            int(key.age_seconds),
                            f"{protects}: {key.count} keys, oldest shown",
                            key.count,
                        )
                    )
                    continue
                if key.retired_at is not None:
                    state = "retired"
                elif newest[(key.purpose, key.org_id)] == key.key_id:
                    state = "current"
                else:
                    state = "accepted"
                if key.org_id is not None:
                    protects = protects.replace("one org", f"org {key.org_id}")
                lines.append(
                    KeyLine(
                        f"{schema}/{key.purpose}/{key.key_id:016x}",
                        schema,
                        "key",
                        state,
                        key.created_at.isoformat(),
                        int(key.age_seconds),
                        protects,
                    )
                )
    finally:
        await close_pool(pool)
    warnings = [
        f"{line.id} is {_age(line.age_seconds)} old (over key_max_age, {_age(config.key_max_age)}); "
        "rotate it (docs/keys.md)"
        for line in lines
        if line.state in ("current", "active")
        and line.age_seconds is not None
        and line.age_seconds > config.key_max_age
    ]
    return lines, warnings
