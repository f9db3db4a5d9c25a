"""Which org a Vault mount (``<org slug>/<vault>``) names.

The store records each org's slug at enrolment. Slugs come from the enrolling
caller, so two orgs may have recorded the same one; a mount then names every
org with that slug, and the caller's own token picks among them. The slugs
themselves are in memory (:class:`vault.storage.store_mounts.OrgTable`).
"""

from __future__ import annotations

from typing import NamedTuple

from vault.errors import BadRequest, NotFound, Unauthorized

__all__ = ["KV_KINDS", "RESERVED_VAULT_NAMES", "KVPath", "check_new_vault_name", "kv_path", "mount_org"]

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
