"""The audit log's export and verification through the store's API, for an auditor with no database password.

An org's export holds its own events, a skip line for the other orgs' events between them,
every chain's head and the checkpoints; ``verify --file`` refuses a file that is not whole.
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from tests.support.cvault_command import cvault_env, run_cvault
from tests.support.enrolled_org import EnrolledOrg, world_of
from tests.support.harness import Harness, User
from vault.audit.export import verify_lines
from vault.audit.query import AuditQueries
from vault.client import Client, Credentials
from vault.storage.audit import PgAuditRepository
from vault.storage.pool import Pool
from vault.web.console import create_console_app
from vault.web.store.handlers import VERIFY_REUSE
from vault.web.store.services import SERVICES_KEY


async def _put(w: EnrolledOrg, name: str, value: str) -> None:
    r = await w.h.store("PUT", w.secret(name), w.bundle, {"value": value})
    assert r.status == 200, r


async def _auditor(w: EnrolledOrg) -> tuple[User, str]:
    """An auditor of ``w``'s org: their user and a store token with ``a`` only."""
    auditor = await w.h.add_member(w.owner, w.org, "auditor@example.com", "auditor")
    r = await w.h.store("POST", w.path("/tokens"), w.bundle, {"mask": "a"})
    assert r.status == 201, r
    return auditor, r.body["token"]


async def _two_orgs(harness: Harness) -> tuple[EnrolledOrg, EnrolledOrg]:
    acme = await world_of(harness)
    globex = EnrolledOrg(harness, *await harness.enrolled_vault("boss@globex.example", "globex"))
    for i in range(3):
        await _put(acme, "db/url", f"acme-{i}")
        await _put(globex, "db/url", f"globex-{i}")
    return acme, globex


async def _export(h: Harness, w: EnrolledOrg, audit_bundle: str) -> list[str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(h.store_url + w.path("/audit/export"), headers={"Authorization": f"Bearer {audit_bundle}"}) as r,
    ):
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("application/x-ndjson")
        return (await r.text()).splitlines(keepends=True)


async def test_an_orgs_export_holds_its_events_the_heads_and_checkpoints_and_verifies(
    harness: Harness, pool: Pool
) -> None:
    acme, _ = await _two_orgs(harness)
    assert await PgAuditRepository(pool, "store").checkpoint(every=0, timeout=10)
    _, token = await _auditor(acme)
    audit = await harness.store_bundle(token, acme.auth)
    lines = await _export(harness, acme, audit)
    bodies = [json.loads(line) for line in lines]
    kinds = [b.get("kind", "event") for b in bodies]
    assert kinds[0] == "checkpoint" and kinds[-1] == "end"
    assert kinds.count("heads") == 1 and "skip" in kinds
    events = [b for b in bodies if "kind" not in b]
    assert events and {e["org"] for e in events} == {acme.org}
    assert bodies[-1]["events"] == len(events)
    assert "globex" not in "".join(lines)
    report = verify_lines(lines)
    assert report.ok, report.message
    assert any("of other orgs passed over" in c.message for c in report.chains)

    # An edited event, a missing end line, a missing event, nothing at all: each refused.
    index = next(i for i, b in enumerate(bodies) if b.get("action") == "secrets.write")
    edited = [*lines]
    edited[index] = json.dumps({**bodies[index], "secret": "elsewhere"}) + "\n"
    assert not verify_lines(edited).ok
    assert "truncated" in verify_lines(lines[:-1]).message
    assert not verify_lines(lines[:index] + lines[index + 1 :]).ok
    assert "no heads line" in verify_lines([]).message
    assert not verify_lines(lines[: kinds.index("heads")]).ok


async def test_the_store_verifies_its_log_for_a_caller_with_a_and_only_for_one(harness: Harness, pool: Pool) -> None:
    acme, _ = await _two_orgs(harness)
    _, token = await _auditor(acme)
    audit = await harness.store_bundle(token, acme.auth)
    r = await harness.store("GET", acme.path("/audit/verify"), audit)
    assert r.status == 200, r
    assert r.body["ok"] is True and r.body["checked"] > 0
    assert any(c["chain"] == -1 for c in r.body["chains"])
    reader = await harness.store_bundle(await harness.mint(acme.bundle, acme.org, mask="r"), acme.auth)
    assert (await harness.store("GET", acme.path("/audit/verify"), reader)).status == 403
    assert (await harness.store("GET", acme.path("/audit/export"), reader)).status == 403

    seq = await pool.fetchval("SELECT min(seq) FROM store.audit_events WHERE action = 'secrets.write'")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(f"UPDATE store.audit_events SET actor = 'someone-else' WHERE seq = {seq}")
    # The report of a minute ago is answered again (a caller in a loop costs one pass a minute); then a new pass.
    r = await harness.store("GET", acme.path("/audit/verify"), audit)
    assert r.status == 200 and r.body["ok"] is True
    harness.store_clock.offset += VERIFY_REUSE
    r = await harness.store("GET", acme.path("/audit/verify"), audit)
    assert r.status == 200 and r.body["ok"] is False
    assert (await AuditQueries(PgAuditRepository(pool, "store")).verify()).broken_seq in {
        c["broken_seq"] for c in r.body["chains"]
    }


async def test_cvault_audit_export_and_verify_with_only_an_auditors_credentials(
    harness: Harness, pool: Pool, tmp_path: Path
) -> None:
    acme, _ = await _two_orgs(harness)
    auditor, token = await _auditor(acme)
    # No CVAULT_DATABASE_URL: the auditor's store token and login session only.
    env = cvault_env(
        {
            "CVAULT_STORE_URL": harness.store_url,
            "CVAULT_AUTHORITY_URL": harness.authority_url,
            "CVAULT_STORE_TOKEN": token,
            "CVAULT_SESSION": auditor.session,
            "HOME": str(tmp_path),
        }
    )
    out = tmp_path / "audit.jsonl"
    # Someone else's link where the export writes first: followed, it would truncate and chmod its target.
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    victim.chmod(0o644)
    (tmp_path / ".audit.jsonl.partial").symlink_to(victim)
    status, _, err = await run_cvault("audit", "export", "-o", str(out), env=env)
    assert victim.read_text() == "keep me\n" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert status == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "wrote" in err and out.stat().st_size > 0
    status, printed, err = await run_cvault("audit", "verify", "--file", str(out), env=env)
    assert status == 0, printed + err
    assert "intact" in printed

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    status, printed, _ = await run_cvault("audit", "verify", "--file", str(empty), env=env)
    assert status == 3 and "BROKEN" in printed
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("".join(out.read_text().splitlines(keepends=True)[:-2]))
    status, printed, _ = await run_cvault("audit", "verify", "--file", str(truncated), env=env)
    assert status == 3 and "BROKEN" in printed

    status, printed, err = await run_cvault("audit", "verify", "--json", env=env)
    assert status == 0, printed + err
    assert json.loads(printed)["ok"] is True
    seq = await pool.fetchval("SELECT max(seq) FROM store.audit_events WHERE org = $1", acme.org)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(f"DELETE FROM store.audit_events WHERE seq = {seq}")
    harness.store_clock.offset += VERIFY_REUSE  # past the served report's reuse window
    status, printed, err = await run_cvault("audit", "verify", env=env)
    assert status == 3, printed + err
    assert "BROKEN" in printed


async def test_the_consoles_chain_status_needs_no_database_url(harness: Harness) -> None:
    acme, _ = await _two_orgs(harness)
    auditor, token = await _auditor(acme)
    credentials = Credentials.from_text(store_token=token, session=auditor.session)
    client = Client(store_url=harness.store_url, authority_url=harness.authority_url, credentials=credentials)
    async with (
        client,
        TestServer(create_console_app(client), host="127.0.0.1") as server,
        aiohttp.ClientSession() as http,
        http.get(str(server.make_url("/chain"))) as r,
    ):
        page = await r.text()
    assert r.status == 200, page
    assert 'class="status intact"' in page
    assert "the store, through its API" in page


class _CountingRepository(PgAuditRepository):
    """The real repository, counting how many verifications read the heads."""

    heads_read = 0

    async def heads(self) -> list[tuple[int, int, bytes]]:
        self.heads_read += 1
        return await super().heads()


async def test_concurrent_verifications_share_one_pass_over_the_log(harness: Harness, pool: Pool) -> None:
    await _two_orgs(harness)
    repository = _CountingRepository(pool, "store")
    queries = AuditQueries(repository)
    reports = await asyncio.gather(*(queries.verify() for _ in range(5)))
    assert all(r.ok for r in reports) and len({r.checked for r in reports}) == 1
    assert repository.heads_read == 1
    assert (await queries.verify()).ok and repository.heads_read == 2  # a later call verifies afresh


async def test_a_loop_of_verifications_costs_one_pass_per_reuse_window(harness: Harness, pool: Pool) -> None:
    await _two_orgs(harness)
    repository = _CountingRepository(pool, "store")
    now = [1000.0]
    queries = AuditQueries(repository, clock=lambda: now[0])
    for _ in range(3):
        assert (await queries.verify(reuse_for=60)).ok
        now[0] += 10
    assert repository.heads_read == 1
    now[0] += 60
    assert (await queries.verify(reuse_for=60)).ok and repository.heads_read == 2
    assert (await queries.verify()).ok and repository.heads_read == 3  # without reuse_for, always a pass


async def test_a_file_whose_events_run_past_its_heads_is_refused(harness: Harness, pool: Pool) -> None:
    await _two_orgs(harness)
    lines = [line async for line in AuditQueries(PgAuditRepository(pool, "store")).export()]
    assert verify_lines(lines).ok
    bodies = [json.loads(line) for line in lines]
    index = next(i for i, b in enumerate(bodies) if b.get("kind") == "heads")
    heads = bodies[index]
    chain, seq, _ = heads["heads"][0]
    assert seq >= 2
    # The heads line rewound by one event (to that event's own hash): the file's last event is past it.
    before = next(b for b in bodies if "kind" not in b and b["chain"] == chain and b["chain_seq"] == seq - 1)
    rewound = {**heads, "heads": [[chain, seq - 1, before["hash"]], *heads["heads"][1:]]}
    forged = [*lines]
    forged[index] = json.dumps(rewound) + "\n"
    report = verify_lines(forged)
    assert not report.ok and f"past the log's head, which records event {seq - 1}" in report.message


async def test_exports_at_once_are_bounded(harness: Harness) -> None:
    acme, _ = await _two_orgs(harness)
    _, token = await _auditor(acme)
    audit = await harness.store_bundle(token, acme.auth)
    queries = harness.store_app[SERVICES_KEY].audit_queries
    # Two exports running (held here as a slow reader would hold them): a third waits its turn.
    with queries.export_slot(), queries.export_slot():
        r = await harness.store("GET", acme.path("/audit/export"), audit)
        assert r.status == 429 and r.body["error"]["code"] == "rate_limited"
    # A slot comes back when its export ends, also one that failed.
    assert verify_lines(await _export(harness, acme, audit)).ok
    assert verify_lines(await _export(harness, acme, audit)).ok
