"""A write whose first attempt may have committed is never reported as "nothing was changed".

Issue 25, item 1: ``HTTP.request`` retried a write whose answer was lost with the
same ``Idempotency-Key`` and, when the later attempts failed before reaching the
database (PostgreSQL down: ``503 unavailable``), raised the *last* error, which
promises nothing was changed; the caller wrote again under a new key and stored
the value twice. Here the first attempt's COMMIT is slowed by a deferred trigger
past the client's timeout (its answer is lost while the write commits), and the
client's own back-off (an injected sleep, so the order of events is fixed, not
timed) stops PostgreSQL before the retries: the call must raise
``OutcomeUnknown`` with its key, and the retry with that key once PostgreSQL is
back must answer the stored version without storing a second one. The CLI's
``cvault secrets set`` says so in words and exits with status 5.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.cvault_command import cvault_env, run_cvault
from vault.client.http import HTTP, RetryPolicy
from vault.errors import OutcomeUnknown
from vault.storage.pool import close_pool, create_pool

from .cluster import Cluster
from .services import fault_services, run_sql

SLOW_COMMIT = """
CREATE FUNCTION store.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    secret text := (SELECT name FROM store.secrets WHERE id = NEW.secret_id);
BEGIN
    IF secret LIKE 'slow%' THEN
        PERFORM pg_sleep(1.5);
    ELSIF secret LIKE 'hung%' THEN
        PERFORM pg_sleep(5);
    END IF;
    RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON store.secret_versions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION store.slow_commit();
"""


async def _versions(url: str, name: str) -> int:
    pool = await create_pool(url, max_size=1)
    try:
        count: int = await pool.fetchval(
            "SELECT count(*) FROM store.secret_versions v JOIN store.secrets s ON s.id = v.secret_id WHERE s.name = $1",
            name,
        )
        return count
    finally:
        await close_pool(pool)


async def test_a_write_in_doubt_then_postgres_down_is_outcome_unknown(
    fault_cluster: Cluster, fault_database: str, tmp_path: Path
) -> None:
    await run_sql(fault_database, SLOW_COMMIT)
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        # The client's back-off after an attempt. After the first (whose answer was lost), wait until
        # that write has committed, then take PostgreSQL down: the retries find the database gone.
        pauses.append(seconds)
        if len(pauses) == 1:
            deadline = time.monotonic() + 30
            while await _versions(fault_database, "slow") == 0:
                assert time.monotonic() < deadline, "the first attempt never committed"
                await asyncio.sleep(0.1)
            fault_cluster.stop("fast")

    async with fault_services(fault_database, tmp_path) as (h, _store):
        _owner, org, _auth, _root, bundle = await h.enrolled_vault("owner@example.com", "acme", "v")
        url = f"{h.store_url}/v1/orgs/{org}/vaults/v/secrets/slow"
        http = HTTP(timeout=0.5, retry=RetryPolicy(attempts=4, base=0.05, cap=0.2), sleep=pause)
        try:
            with pytest.raises(OutcomeUnknown) as err:
                await http.request(
                    "PUT", url, authorization=f"Bearer {bundle}", body={"value": "once"}, idempotency_key="k-slow"
                )
            print(f"\nfirst attempt lost, then PostgreSQL down: {err.value.message}")
            assert err.value.idempotency_key == "k-slow" and "k-slow" in err.value.message
            assert len(pauses) == 3  # every retry was made (and found the database gone)
            fault_cluster.start()
            # The retry with the key, once the database is back: the stored version, not a second one.
            deadline = time.monotonic() + 30
            while True:
                try:
                    reply = await http.request(
                        "PUT", url, authorization=f"Bearer {bundle}", body={"value": "once"}, idempotency_key="k-slow"
                    )
                    break
                except OutcomeUnknown:
                    assert time.monotonic() < deadline
                    pauses.clear()
        finally:
            await http.close()
        assert reply["version"] == 1
        assert await _versions(fault_database, "slow") == 1


async def test_cvault_secrets_set_says_the_outcome_is_unknown(
    fault_cluster: Cluster, fault_database: str, tmp_path: Path
) -> None:
    await run_sql(fault_database, SLOW_COMMIT)
    # database_timeout below the trigger's sleep: every attempt's COMMIT outlasts the store's wait.
    async with fault_services(fault_database, tmp_path, database_timeout=0.5) as (h, _store):
        _owner, _org, auth, root, _bundle = await h.enrolled_vault("owner@example.com", "acme", "v")
        stripped = await h.authority("POST", "/v1/tokens/strip", auth)
        assert stripped.status == 201, stripped
        value = tmp_path / "value"
        value.write_text("hunter2")
        home = tmp_path / "home"
        home.mkdir()
        env = cvault_env(
            {
                "HOME": str(home),
                "XDG_CONFIG_HOME": str(home),
                "CVAULT_AUTHORITY_URL": h.authority_url,
                "CVAULT_STORE_URL": h.store_url,
                "CVAULT_STORE_TOKEN": root,
                "CVAULT_AUTH_TOKEN": stripped.body["token"],
            }
        )
        args = ("secrets", "set", "hung", "--vault", "v", "--from-file", str(value))
        status, out, err = await run_cvault(*args, env=env)
        print(f"\ncvault secrets set, every COMMIT outlasting the store's wait: exit {status}: {err.strip()}")
        assert status == 5, (status, out, err)
        assert "may have been stored or not" in err and "(outcome_unknown)" in err and "hunter2" not in err
        key = err.split("--idempotency-key ")[1].split(",")[0]
        await run_sql(fault_database, "DROP TRIGGER slow_commit ON store.secret_versions")
        # Whatever the hung attempts did, the same key stores the value at most once.
        deadline = time.monotonic() + 30
        while True:
            status, out, err = await run_cvault(*args, "--idempotency-key", key, env=env)
            if status == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert status == 0 and "v/hung: version 1 written" in out, (status, out, err)
    assert await _versions(fault_database, "hung") == 1
