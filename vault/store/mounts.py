"""Which org a Vault mount (``<org slug>/<vault>``) names, and to whom it says so.

The store records each org's slug at enrolment, as the authority attests it in the
org discharge (so two orgs have one slug only in data enrolled before that). A mount
names the org of the caller's own token when that org has the slug. Every other case
(no token, a token of another org, a slug no enrolment recorded) is the same refusal,
so the Vault API tells nobody which slugs are enrolled (docs/vault-compat.md, "Mounts").
The slugs themselves are in memory (:class:`vault.storage.store_mounts.OrgTable`).
"""

from __future__ import annotations

from vault.errors import Unauthorized

__all__ = ["mount_org", "own_mount"]


def own_mount(slug: str, token_org: int | None, ids: tuple[int, ...]) -> int:
    """The token's org if it is one of ``ids`` (the orgs whose enrolment recorded ``slug``), else
    :class:`Unauthorized`, one answer for every other case."""
    if token_org is not None and token_org in ids:
        return token_org
    raise Unauthorized(f"this token has no mount {slug!r}")


def mount_org(slug: str, token_org: int | None, ids: tuple[int, ...]) -> int:
    """The org a KV request's mount names: as :func:`own_mount`, except that a request whose token
    names no org (none, or unreadable) goes on to the guard when the slug names one org, which
    refuses it and audits the attempt there. The reply is Vault's 403 either way."""
    if token_org is None and len(ids) == 1:
        return ids[0]
    return own_mount(slug, token_org, ids)
