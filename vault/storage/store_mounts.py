"""Org slugs as the Vault-compatible API names them (``<slug>/<vault>`` mounts)."""

from __future__ import annotations

from typing import Any

from .pool import database_errors

__all__ = ["orgs_with_slug"]

# Slugs are what enrolment recorded; the authority keeps them unique, but the store
# only records what each enrolment said, so a slug may name more than one org here.
_BY_SLUG = "SELECT id FROM store.orgs WHERE slug = $1 ORDER BY id LIMIT 16"


async def orgs_with_slug(pool: Any, slug: str) -> tuple[int, ...]:
    with database_errors():
        rows = await pool.fetch(_BY_SLUG, slug)
    return tuple(int(r["id"]) for r in rows)
