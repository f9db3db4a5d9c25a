"""A test's store audit events, read back in order, and a ``COMMIT`` that fails after a write's audit event."""

from __future__ import annotations

from typing import Any

from vault.storage.pool import Pool

# A COMMIT that fails (issue 20): deferred, the trigger runs at COMMIT, after the write's statements
# (its audit event included) went through. Refuses versions of secrets named doomed*.
FAIL_AT_COMMIT = """
CREATE FUNCTION store.fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT name FROM store.secrets WHERE id = NEW.secret_id) LIKE 'doomed%' THEN
        RAISE EXCEPTION 'refused at commit';
    END IF;
    RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON store.secret_versions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION store.fail_at_commit();
"""


async def audit_head(pool: Pool) -> int:
    seq: int = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM store.audit_events")
    return seq


async def audit_since(pool: Pool, seq: int) -> list[dict[str, Any]]:
    """Store audit events after ``seq``, oldest first, as plain dicts."""
    rows = await pool.fetch("SELECT * FROM store.audit_events WHERE seq > $1 ORDER BY seq", seq)
    return [dict(r) for r in rows]


def summary(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(action, outcome, secret, version) of each event: what the tests compare exactly."""
    return [(e["action"], e["outcome"], e["secret"], e["version"]) for e in events]
