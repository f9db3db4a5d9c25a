"""Which org a Vault mount (``<org slug>/<vault>``) names, remembered in memory.

The store records each org's slug at enrolment. Slugs come from the enrolling
caller, so two orgs may have recorded the same one; a mount then names every
org with that slug, and the caller's own token picks among them (see
:meth:`MountDirectory.org_for`). Answers are cached: a slug changed by a
re-enrolment on another node is seen within ``ttl`` seconds, an org enrolled
after a miss within ``miss_ttl``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

from vault.errors import NotFound, Unauthorized

__all__ = ["MountDirectory"]

SlugLookup = Callable[[str], Awaitable[tuple[int, ...]]]


class MountDirectory:
    def __init__(
        self,
        clock: Callable[[], float],
        *,
        ttl: float = 60.0,
        miss_ttl: float = 5.0,
        size: int = 4096,
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._size = size
        self._cache: OrderedDict[str, tuple[float, tuple[int, ...]]] = OrderedDict()

    async def orgs(self, slug: str, lookup: SlugLookup) -> tuple[int, ...]:
        now = self._clock()
        hit = self._cache.get(slug)
        if hit is not None:
            expires, ids = hit
            if now < expires:
                self._cache.move_to_end(slug)
                return ids
        ids = await lookup(slug)
        self._cache[slug] = (now + (self._ttl if ids else self._miss_ttl), ids)
        self._cache.move_to_end(slug)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return ids

    async def org_for(self, slug: str, token_org: int | None, lookup: SlugLookup) -> int:
        """The org the mount names: the token's own org if it has this slug, else the only org that has it.

        Raises :class:`NotFound` when no enrolled org has the slug and
        :class:`Unauthorized` when several do and the token belongs to none of them.
        """
        ids = await self.orgs(slug, lookup)
        if not ids:
            raise NotFound(f"no organization enrolled at this store has the slug {slug!r}")
        if token_org is not None and token_org in ids:
            return token_org
        if len(ids) == 1:
            # The guard then refuses a token of another org, and audits it in this one.
            return ids[0]
        raise Unauthorized(f"mount {slug!r}: this token belongs to none of the organizations with that slug")

    def forget(self, slug: str) -> None:
        self._cache.pop(slug, None)
