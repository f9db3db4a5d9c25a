"""Which org a Vault mount (``<org slug>/<vault>``) names.

The store records each org's slug at enrolment. Slugs come from the enrolling
caller, so two orgs may have recorded the same one; a mount then names every
org with that slug, and the caller's own token picks among them. The slugs
themselves are in memory (:class:`vault.storage.store_mounts.OrgTable`).
"""

from __future__ import annotations

from vault.errors import NotFound, Unauthorized

__all__ = ["mount_org"]


def mount_org(slug: str, token_org: int | None, ids: tuple[int, ...]) -> int:
    """The org the mount names: the token's own org if it has this slug, else the only org that has it.

    ``ids`` are the orgs whose enrolment recorded ``slug``. Raises :class:`NotFound`
    when there are none and :class:`Unauthorized` when several have it and the token
    belongs to none of them.
    """
    if not ids:
        raise NotFound(f"no organization enrolled at this store has the slug {slug!r}")
    if token_org is not None and token_org in ids:
        return token_org
    if len(ids) == 1:
        # The guard then refuses a token of another org, and audits it in this one.
        return ids[0]
    raise Unauthorized(f"mount {slug!r}: this token belongs to none of the organizations with that slug")
