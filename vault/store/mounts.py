"""Which org a Vault mount (``<org slug>/<vault>``, or ``<vault>`` alone for the token's own org) names,
whether a vault name can be a one-segment mount, and where a Vault path points.

The store records each org's slug at enrolment, as the authority attests it in the
org discharge (so two orgs have one slug only in data enrolled before that). A mount
names the org of the caller's own token when that org has the slug. Every other case
(no token, a token of another org, a slug no enrolment recorded) is the same refusal,
so the Vault API tells nobody which slugs are enrolled (docs/vault-compat.md, "Mounts").
The slugs themselves are in memory (:class:`vault.storage.store_mounts.OrgTable`).
"""

from __future__ import annotations

from typing import NamedTuple

from vault.errors import BadRequest, Unauthorized

__all__ = ["KV_KINDS", "RESERVED_VAULT_NAMES", "KVPath", "check_new_vault_name", "kv_path", "mount_org", "own_mount"]

# The Vault API's top-level paths: a vault of these names could not be a one-segment mount.
RESERVED_VAULT_NAMES = frozenset({"sys", "auth", "identity", "cubbyhole"})
# What follows a mount in a KV version 2 path.
KV_KINDS = frozenset({"data", "metadata", "delete", "undelete", "destroy", "subkeys"})


class KVPath(NamedTuple):
    vault: str
    kind: str  # one of KV_KINDS, or "config"
    rest: str  # the secret's name or a list prefix; "" for none


def check_new_vault_name(name: str) -> str:
    """A name a new vault may take: not one the Vault API's one-segment mount could not reach."""
    if name in RESERVED_VAULT_NAMES:
        raise BadRequest(
            f"the vault name {name!r} is reserved: the Vault-compatible API serves its own /v1/{name}/ paths, so it "
            f"could not be addressed as a one-segment mount; reserved: {', '.join(sorted(RESERVED_VAULT_NAMES))}"
        )
    return name


def kv_path(path: str, slug: str | None) -> KVPath | None:
    """Where a Vault path points inside the org whose slug is ``slug``: ``<slug>/<vault>/<kind>/...`` (the
    two-segment mount) or ``<vault>/<kind>/...`` (the one-segment mount, the token's org); ``None`` for a
    path under no KV mount. A path that reads both ways is the two-segment one (as the routes read it)."""
    parts = path.strip("/").split("/")
    for start in (1, 0) if slug is not None and parts[0] == slug else (0,):
        if len(parts) <= start + 1 or parts[start] in RESERVED_VAULT_NAMES:
            continue
        vault, kind, rest = parts[start], parts[start + 1], "/".join(parts[start + 2 :])
        if kind in KV_KINDS or (kind == "config" and not rest):
            return KVPath(vault, kind, rest)
    return None


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
