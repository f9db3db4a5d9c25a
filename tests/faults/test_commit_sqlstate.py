"""A COMMIT the database answers with an error is mapped by its SQLSTATE class, like every other statement.

Issue 25, item 7: a COMMIT refused by a deferred trigger was ``500 database_error``
whatever its class, and one of class ``53``/``57`` was ``503 outcome_unknown``
although the server had answered (and so rolled back). Here a deferred
constraint trigger raises, at COMMIT, a serialization failure, an out-of-memory,
a statement timeout and a plain ``RAISE``; the real store must answer each with
the class's code, say that nothing was changed, store no version and record an
``error`` event.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from vault.storage.pool import close_pool, create_pool

from .cluster import Cluster
from .scenario import setup_org
from .services import fault_services, run_sql

# The secret's name picks the SQLSTATE the trigger raises at COMMIT.
RAISE_AT_COMMIT = """
CREATE FUNCTION store.raise_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    secret text := (SELECT name FROM store.secrets WHERE id = NEW.secret_id);
BEGIN
    IF secret LIKE 'state-%' THEN
        RAISE EXCEPTION 'refused at commit' USING ERRCODE = substr(secret, 7, 5);
    END IF;
    RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER raise_at_commit AFTER INSERT ON store.secret_versions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION store.raise_at_commit();
"""

EXPECTED = {
    "40001": (503, "transaction_aborted"),  # serialization failure
    "40P01": (503, "transaction_aborted"),  # deadlock
    "53200": (503, "unavailable"),  # out of memory
    "53100": (503, "unavailable"),  # disk full
    "57014": (503, "unavailable"),  # a statement timeout
    "P0001": (500, "database_error"),  # a trigger's own RAISE: a bug or a rule, not transient
    "23514": (500, "database_error"),  # a check violation
}


async def test_commit_errors_are_mapped_by_sqlstate_class(
    fault_cluster: Cluster, fault_database: str, tmp_path: Path
) -> None:
    await run_sql(fault_database, RAISE_AT_COMMIT)
    answers: dict[str, tuple[int, str, str]] = {}
    async with fault_services(fault_database, tmp_path) as (h, _store):
        org = await setup_org(h)
        async with aiohttp.ClientSession() as http:
            for sqlstate in EXPECTED:
                async with http.put(
                    org.secret_url(h.store_url, f"state-{sqlstate}"),
                    json={"value": "v"},
                    headers={"Authorization": f"Bearer {org.bundle}"},
                ) as resp:
                    error = (await resp.json())["error"]
                    answers[sqlstate] = (resp.status, error["code"], error["message"])
    print(f"\nCOMMIT refused with each SQLSTATE: {answers}")
    assert {k: v[:2] for k, v in answers.items()} == EXPECTED
    assert all("nothing was changed" in message for _, _, message in answers.values()), answers
    pool = await create_pool(fault_database, max_size=1)
    try:
        versions = await pool.fetchval("SELECT count(*) FROM store.secret_versions")
        errors = await pool.fetch(
            "SELECT secret, detail->>'code' AS code FROM store.audit_events "
            "WHERE action = 'secrets.write' AND outcome = 'error' ORDER BY seq"
        )
        oks = await pool.fetchval(
            "SELECT count(*) FROM store.audit_events WHERE action = 'secrets.write' AND outcome = 'ok'"
        )
    finally:
        await close_pool(pool)
    assert versions == 0 and oks == 0
    assert [(e["secret"], e["code"]) for e in errors] == [(f"state-{k}", v[1]) for k, v in EXPECTED.items()]
