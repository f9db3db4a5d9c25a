"""Fixtures shared by the store's end-to-end tests: both services, an enrolled org, helpers for audit rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from vault.storage.pool import Pool

from .harness import Harness, User, running_services


@dataclass
class World:
    """An enrolled org ``acme`` with vault ``prod``; ``owner`` holds the root store token."""

    h: Harness
    owner: User
    org: int
    auth: str  # owner's authority bundle (permission token + login discharge)
    root: str  # root store token
    bundle: str  # root store token + org discharge

    def path(self, rest: str) -> str:
        return f"/v1/orgs/{self.org}{rest}"

    def secret(self, name: str, vault: str = "prod") -> str:
        return self.path(f"/vaults/{vault}/secrets/{name}")


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[Harness]:
    async with running_services(database_url) as h:
        yield h


@pytest.fixture
async def world(services: Harness) -> World:
    return await world_of(services)


async def world_of(h: Harness) -> World:
    """Org ``acme`` (slug ``acme``) enrolled, vault ``prod`` created: the ``world`` fixture, for any harness."""
    return World(h, *await h.enrolled_vault("owner@example.com", "acme"))


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
