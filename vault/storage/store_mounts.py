"""Org slugs as the Vault-compatible API names them (``<slug>/<vault>`` mounts)."""

from __future__ import annotations

from typing import Any

from .pool import database_errors

__all__ = ["org_slug", "orgs_with_slug"]

# Slugs are what enrolment recorded; the authority keeps them unique, but the store
# only records what each enrolment said, so a slug may name more than one org here.
_BY_SLUG = "SELECT id FROM store.orgs WHERE slug = $1 ORDER BY id LIMIT 16"
_SLUG = "SELECT slug FROM store.orgs WHERE id = $1"


async def orgs_with_slug(pool: Any, slug: str) -> tuple[int, ...]:
    with database_errors():
        rows = await pool.fetch(_BY_SLUG, slug)
    return tuple(int(r["id"]) for r in rows)


async def org_slug(pool: Any, org_id: int) -> str | None:
    """The slug an org's mounts are named by (``None`` if it is not enrolled)."""
    with database_errors():
        slug: str | None = await pool.fetchval(_SLUG, org_id)
    return slug
