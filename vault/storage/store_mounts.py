"""Org slugs as the Vault-compatible API names them (``<slug>/<vault>`` mounts), held in memory.

Every enrolled org's slug is loaded at start and reloaded when an enrolment on any
node adds an org or changes a slug: enrolment commits with
:func:`~vault.storage.key_watch.announce_key_change` (it adds the org's root key too),
and the store's :class:`~vault.storage.key_watch.KeyWatcher` reloads this table with
the keys. A request thus reads no org row. A slug arriving on a request is untrusted,
so a miss does not query it: like an unknown key id it waits for one shared reload,
run at most once per :data:`~vault.storage.key_watch.RELOAD_INTERVAL`, which covers
the moment between another node's enrolment and its notification.
"""

from __future__ import annotations

from .key_watch import SharedReload
from .pool import Pool, database_errors

__all__ = ["OrgTable"]

_ORGS = "SELECT id, slug FROM store.orgs ORDER BY id"


class OrgTable:
    """Implements :class:`vault.store.interfaces.OrgDirectory`: slug to org ids and org id to slug, every enrolled org.

    Slugs are what enrolment recorded; the authority keeps them unique, but the store
    only records what each enrolment said, so a slug may name more than one org here.
    """

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._slugs: dict[int, str] = {}
        self._by_slug: dict[str, tuple[int, ...]] = {}
        self._miss = SharedReload(self.reload)

    def __repr__(self) -> str:
        return f"OrgTable(orgs={len(self._slugs)})"

    @classmethod
    async def open(cls, pool: Pool) -> OrgTable:
        table = cls(pool)
        await table.reload()
        return table

    async def reload(self) -> None:
        with database_errors():
            rows = await self._pool.fetch(_ORGS)
        slugs = {int(r["id"]): str(r["slug"]) for r in rows}
        by_slug: dict[str, list[int]] = {}
        for org_id, slug in slugs.items():
            by_slug.setdefault(slug, []).append(org_id)
        self._slugs, self._by_slug = slugs, {s: tuple(ids) for s, ids in by_slug.items()}

    def cached_orgs_with_slug(self, slug: str) -> tuple[int, ...] | None:
        """:meth:`orgs_with_slug` without waiting: ``None`` when the slug is not in memory (yet)."""
        return self._by_slug.get(slug)

    def cached_slug_of(self, org_id: int) -> str | None:
        """:meth:`slug_of` without waiting: ``None`` when the org is not in memory (yet)."""
        return self._slugs.get(org_id)

    async def orgs_with_slug(self, slug: str) -> tuple[int, ...]:
        """The ids of the orgs whose enrolment recorded ``slug`` (empty if none did)."""
        found = self._by_slug.get(slug)
        if found is None:
            await self._miss()
            found = self._by_slug.get(slug, ())
        return found

    async def slug_of(self, org_id: int) -> str | None:
        """The slug an org's mounts are named by (``None`` if it is not enrolled)."""
        found = self._slugs.get(org_id)
        if found is None:
            await self._miss()
            found = self._slugs.get(org_id)
        return found
