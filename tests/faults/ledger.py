"""What a fault test sent and was told, and the counts the issue asks for once the dust settles.

Every logical write has a unique value and an ``Idempotency-Key``; the ledger
keeps the ones the store acknowledged (200 with a version) and the ones whose
outcome the client never learnt. :func:`count_faults` then compares the
database (versions, audit events) and the real ``cvault audit verify`` with it:

- ``lost``: acknowledged writes whose version is missing or holds another value;
- ``stored_twice``: logical writes (one key) stored as more than one version;
- ``ok_without_change``: ``secrets.write`` ``ok`` events naming a version that does
  not exist, or a second ``ok`` event for one version;
- ``change_without_event``: versions with no ``ok`` write event;
- ``over_bound``: answers slower than the bound the store promises;
- ``chain_intact``: ``cvault audit verify`` exited 0.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from vault.crypto.keyring import MasterKey
from vault.storage.pool import close_pool, create_pool

from .services import run_cli

__all__ = ["Ledger", "Write", "assert_no_faults", "count_faults"]


@dataclass
class Write:
    name: str
    value: str
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: int | None = None  # set once acknowledged


@dataclass
class Ledger:
    """Shared by the workers of a test; ``answers`` holds (seconds taken, status, code, monotonic end) of each
    request (status 0: no answer)."""

    acknowledged: list[Write] = field(default_factory=list)
    unknown: list[Write] = field(default_factory=list)
    answers: list[tuple[float, int, str | None, float]] = field(default_factory=list)
    counter: int = 0
    retried: int = 0  # writes whose answer was lost or not a 200, retried with their key by settle()

    def next_write(self, name: str) -> Write:
        self.counter += 1
        return Write(name, f"value-{self.counter}-{uuid.uuid4().hex[:8]}")

    def over(self, bound: float) -> list[tuple[float, int, str | None, float]]:
        return [a for a in self.answers if a[0] > bound]


async def send_write(
    http: aiohttp.ClientSession, url: str, bundle: str, write: Write, ledger: Ledger, *, timeout: float = 60.0
) -> int:
    """One attempt of ``write``; records the answer; the status (0: no answer, connection lost)."""
    started = time.monotonic()
    status, code = 0, None
    try:
        async with http.put(
            url,
            json={"value": write.value, "max_versions": 1000},
            headers={"Authorization": f"Bearer {bundle}", "Idempotency-Key": write.key},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            status = resp.status
            body: Any = await resp.json(content_type=None)
            if status == 200:
                write.version = body["version"]
            elif isinstance(body, dict) and isinstance(body.get("error"), dict):
                code = body["error"].get("code")
    except (aiohttp.ClientError, TimeoutError, ValueError):
        status = 0
    finally:
        ended = time.monotonic()
        ledger.answers.append((ended - started, status, code, ended))
    return status


async def settle(
    http: aiohttp.ClientSession, base: str, org: int, bundle: str, ledger: Ledger, *, deadline: float = 60.0
) -> None:
    """Retry every write whose outcome is unknown with its own key until the store answers it."""
    until = time.monotonic() + deadline
    ledger.retried += len(ledger.unknown)
    for write in ledger.unknown:
        url = f"{base}/v1/orgs/{org}/vaults/v/secrets/{write.name}"
        while True:
            status = await send_write(http, url, bundle, write, Ledger())
            if status == 200:
                ledger.acknowledged.append(write)
                break
            assert time.monotonic() < until, f"write {write.key} still unanswered (last status {status})"
            await asyncio.sleep(0.2)
    ledger.unknown.clear()


async def count_faults(database_url: str, master_key: bytes, ledger: Ledger, *, bound: float) -> dict[str, Any]:
    """The issue's counts, from the database itself and the real ``cvault audit verify``."""
    from vault.crypto.envelope import DataKey, SecretBinding
    from vault.storage.keys import PgKeyRepository
    from vault.storage.store_keys import DATA_KEY_PURPOSE

    pool = await create_pool(database_url, max_size=2)
    try:
        keys = await PgKeyRepository.open(pool, "store", MasterKey(master_key))
        rows = await pool.fetch(
            "SELECT va.org_id, va.name AS vault, s.name, v.version, v.ciphertext, v.data_key_id "
            "FROM store.secret_versions v JOIN store.secrets s ON s.id = v.secret_id "
            "JOIN store.vaults va ON va.id = s.vault_id"
        )
        replayed = await pool.fetchval(
            "SELECT count(*) FROM store.audit_events WHERE action = 'secrets.write' AND outcome = 'ok' "
            "AND coalesce((detail->>'replayed')::boolean, false)"
        )
        events = await pool.fetch(
            # A replayed key's event answers the first write again; it is not a second write.
            "SELECT secret, version FROM store.audit_events WHERE action = 'secrets.write' AND outcome = 'ok' "
            "AND NOT coalesce((detail->>'replayed')::boolean, false)"
        )
        values: dict[tuple[str, int], str] = {}
        for r in rows:
            if r["ciphertext"] is None:
                continue
            key = DataKey(await keys.get(r["data_key_id"], DATA_KEY_PURPOSE))
            binding = SecretBinding(str(r["org_id"]), r["vault"], r["name"], r["version"], r["data_key_id"])
            values[(r["name"], r["version"])] = key.open(r["ciphertext"], binding).decode()
    finally:
        await close_pool(pool)
    lost = sum(1 for w in ledger.acknowledged if values.get((w.name, w.version or -1)) != w.value)
    per_value = Counter(values.values())
    stored_twice = sum(1 for n in per_value.values() if n > 1)
    event_counts = Counter((e["secret"], e["version"]) for e in events)
    ok_without_change = sum(
        n if key not in values else n - 1 for key, n in event_counts.items() if n > 1 or key not in values
    )
    change_without_event = sum(1 for key in values if key not in event_counts)
    verify = run_cli("audit", "verify", database_url=database_url)
    return {
        "acknowledged": len(ledger.acknowledged),
        # Retries with a key, and how many of them found their first attempt committed (answered from the key).
        "retried": ledger.retried,
        "replayed": replayed,
        "versions": len(values),
        "lost": lost,
        "stored_twice": stored_twice,
        "ok_without_change": ok_without_change,
        "change_without_event": change_without_event,
        "over_bound": len(ledger.over(bound)),
        "chain_intact": verify.returncode == 0,
        "verify": (verify.stdout + verify.stderr).strip(),
    }


def assert_no_faults(counts: dict[str, Any], ledger: Ledger, bound: float) -> None:
    """Every count the issue asks for is zero, and the chain verifies."""
    assert counts["lost"] == 0
    assert counts["stored_twice"] == 0
    assert counts["ok_without_change"] == 0
    assert counts["change_without_event"] == 0
    assert counts["over_bound"] == 0, ledger.over(bound)
    assert counts["chain_intact"], counts["verify"]
