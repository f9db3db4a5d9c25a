"""Secret reads and writes: envelope encryption on the way in and out, audit on every access.

Values are sealed with a fresh data key per version (AES-256-GCM, associated
data binding org, vault, name, version and data-key id) before they reach the
repository, and opened only here, after the row is read. The data key is
unwrapped in memory with the cached KEK keyring, so a read costs one database
round trip plus the audit commit. A read whose audit event is not committed
raises :class:`~vault.errors.Unavailable` and returns no value (fail closed).
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from vault.audit.event import AuditEvent
from vault.crypto.data_key_cache import DataKeyCache
from vault.crypto.envelope import DataKey, SecretBinding, generate_data_key, seal_value
from vault.crypto.keyring import Keyring, WrappedKey
from vault.errors import DecryptionError, NotFound
from vault.macaroon import READ
from vault.types import Clock, RequestContext

from .caller import Caller
from .events import access_for, audit_event
from .interfaces import AuditSink, SecretRepository
from .models import IdempotencyClaim, RootKey, SecretLookup, SecretMetadata, SecretSummary, StoredVersion, WriteOutcome
from .read_batcher import ReadBatcher

__all__ = ["DATA_KEY_PURPOSE", "BatchResult", "DataKeys", "Revealed", "SecretService", "idempotency_hash_key"]

DATA_KEY_PURPOSE = "store-dek"
MAX_BATCH = 1000


class DataKeys(Protocol):
    """The KEK keyring that wraps data keys (:class:`vault.storage.keys.PgKeyRepository`)."""

    @property
    def keyring(self) -> Keyring: ...

    async def get(self, key_id: int, purpose: str, *, conn: object = None) -> bytes: ...


class Revealed(NamedTuple):
    """A decrypted version. ``value`` is plaintext: it goes to the caller and nowhere else (not in a repr)."""

    name: str
    version: int
    stage: str | None
    created_at_unix: int
    value: str

    def __repr__(self) -> str:
        return f"Revealed(name={self.name!r}, version={self.version}, stage={self.stage!r}, value=...)"


@dataclass(frozen=True, slots=True)
class BatchResult:
    secrets: tuple[Revealed, ...]
    missing: tuple[str, ...]


def _unix(stored: StoredVersion) -> int:
    return int(stored.created_at.timestamp())


def idempotency_hash_key(enroll_key: RootKey) -> bytes:
    """The HMAC key of keyed writes' request hashes, derived from the store's enrolment key (one per store,
    on every node, kept across restarts) with a label of its own, so it is never the signing key itself."""
    return hmac.digest(enroll_key.key, b"cvault idempotency request hash v1", "sha256")


class SecretService:
    def __init__(
        self,
        repo: SecretRepository,
        keys: DataKeys,
        audit: AuditSink,
        *,
        clock: Clock,
        request_hash_key: bytes | None = None,
        idempotency_ttl: int = 24 * 3600,
    ) -> None:
        """``request_hash_key`` keys the HMAC that fingerprints a keyed write's request; it must be the same
        on every node and across restarts (the app derives it from the store's enrolment key), or a retry
        after a restart is refused as a different request. ``None`` (tests): a random key."""
        self._repo = repo
        self._keys = keys
        self._audit = audit
        self._request_hash_key = request_hash_key if request_hash_key is not None else secrets.token_bytes(32)
        self._idempotency_ttl = idempotency_ttl
        self._clock = clock
        self._data_keys = DataKeyCache(DATA_KEY_PURPOSE)
        self._reads = ReadBatcher(repo.read_lookups, self._reveal, audit)

    @property
    def data_key_cache(self) -> DataKeyCache:
        return self._data_keys

    async def start(self) -> None:
        """Start serving :meth:`read` (its batch task)."""
        await self._reads.start()

    async def close(self) -> None:
        await self._reads.close()

    # -- reading ----------------------------------------------------------------

    async def _open(self, org_id: int, vault: str, stored: StoredVersion) -> str:
        # Unpacked once: every read passes here.
        name, version, state, _stage, _created, ciphertext, data_key_id, kek_version, wrapped_key = stored
        if state == "deleted":
            raise NotFound(f"version {version} of secret {name!r} is deleted; undelete it to read it")
        if (
            state == "destroyed"
            or ciphertext is None
            or data_key_id is None
            or wrapped_key is None
            or kek_version is None
        ):
            raise NotFound(f"version {version} of secret {name!r} was destroyed")
        keyring = self._keys.keyring
        if keyring.has_version(kek_version):
            data_key = self._data_keys.unwrap(keyring, data_key_id, WrappedKey(kek_version, wrapped_key))
        else:
            # Wrapped by a KEK another node created since this one loaded the keyring; reloads it.
            data_key = DataKey(await self._keys.get(data_key_id, DATA_KEY_PURPOSE))
        binding = SecretBinding(str(org_id), vault, name, version, data_key_id)
        try:
            plaintext = data_key.open(ciphertext, binding)
        except DecryptionError:
            raise DecryptionError(
                f"version {version} of secret {name!r} in vault {vault!r} failed to decrypt: "
                "the ciphertext does not belong to this row (moved, copied or tampered) or its key is wrong"
            ) from None
        return plaintext.decode("utf-8")

    def read(
        self,
        ctx: RequestContext[Caller],
        vault: str,
        name: str,
        *,
        version: int | None = None,
        stage: str | None = None,
    ) -> Awaitable[Revealed]:
        """Await it for one version (the current one unless ``version`` or ``stage`` says), once its read is
        audited.

        Concurrent reads share one query and one audit commit (:mod:`vault.store.read_batcher`).
        """
        revealed: Awaitable[Revealed] = self._reads.read(
            ctx, SecretLookup(ctx.verified_caller.org_id, vault, name, version, stage)
        )
        return revealed

    async def _reveal(
        self, ctx: RequestContext[Caller], lookup: SecretLookup, stored: StoredVersion | None
    ) -> tuple[Revealed, AuditEvent]:
        if stored is None:
            raise lookup.not_found()
        value = await self._open(lookup.org_id, lookup.vault, stored)
        event = audit_event(ctx, "ok", vault=lookup.vault, secret=lookup.name, version=stored.version)
        return Revealed(stored.name, stored.version, stored.stage, _unix(stored), value), event

    async def batch_read(
        self, ctx: RequestContext[Caller], vault: str, *, names: Sequence[str] | None, prefix: str
    ) -> BatchResult:
        """Current versions of ``names`` (or of every name under ``prefix``): one query, one audit batch.

        Only the secrets the caller's caveats allow are returned; every other one is left
        out and recorded as a ``denied`` read. A listed name that is refused is reported in
        ``missing`` like an absent one, so the reply does not say whether it exists.
        """
        caller = ctx.verified_caller
        now = int(self._clock())
        refused: list[str] = []

        def allowed(name: str) -> bool:
            if caller.allows(access_for(ctx, now, READ, vault=vault, secret=name)):
                return True
            refused.append(name)
            return False

        listed = names
        if names is not None:
            names = [n for n in names if allowed(n)]
        rows = []
        if names is None or names:
            rows = await self._repo.read_many(caller.org_id, vault, names=names, prefix=prefix, limit=MAX_BATCH)
        found: list[Revealed] = []
        for stored in rows:
            if names is None and not allowed(stored.name):
                continue
            if stored.state != "active":
                continue
            value = await self._open(caller.org_id, vault, stored)
            found.append(Revealed(stored.name, stored.version, stored.stage, _unix(stored), value))
        returned = {r.name for r in found}
        missing = tuple(n for n in listed if n not in returned) if listed is not None else ()
        events = [
            audit_event(
                ctx, "ok", action="secrets.read", vault=vault, secret=r.name, version=r.version, detail={"batch": True}
            )
            for r in found
        ]
        events.extend(
            audit_event(
                ctx,
                "denied",
                action="secrets.read",
                vault=vault,
                secret=name,
                detail={"batch": True, "reason": "the token's caveats do not allow reading this secret"},
            )
            for name in refused
        )
        if not events:
            events = [audit_event(ctx, "ok", vault=vault, detail={"returned": 0})]
        await self._audit.record(*events)
        return BatchResult(tuple(found), missing)

    async def current_versions(
        self, ctx: RequestContext[Caller], vault: str, *, names: Sequence[str] | None, prefix: str
    ) -> dict[str, int]:
        """The current version of each secret :meth:`batch_read` would return, without reading a value.

        For a watcher (``cvault run --watch``): one query, no data key, one audit event
        (``secrets.versions``, with how many versions it returned) however many secrets
        it covers, so "who read this secret" stays an answer about values. Secrets the
        caller's caveats do not allow are left out, as from a batch read.
        """
        caller = ctx.verified_caller
        now = int(self._clock())
        found = await self._repo.current_versions(caller.org_id, vault, names=names, prefix=prefix, limit=MAX_BATCH)
        allowed = {
            name: version
            for name, version in found.items()
            if caller.allows(access_for(ctx, now, READ, vault=vault, secret=name))
        }
        detail = {"returned": len(allowed), "withheld": len(found) - len(allowed), "prefix": prefix}
        await self._audit.record(audit_event(ctx, "ok", vault=vault, detail=detail))
        return allowed

    async def list_names(
        self, ctx: RequestContext[Caller], vault: str, *, prefix: str, after: str | None, limit: int
    ) -> list[SecretSummary]:
        found = await self._repo.list_secrets(
            ctx.verified_caller.org_id, vault, prefix=prefix, after=after, limit=limit
        )
        await self._audit.record(audit_event(ctx, "ok", vault=vault, detail={"prefix": prefix, "returned": len(found)}))
        return found

    async def metadata(self, ctx: RequestContext[Caller], vault: str, name: str) -> SecretMetadata:
        meta = await self._repo.metadata(ctx.verified_caller.org_id, vault, name)
        await self._audit.record(audit_event(ctx, "ok", vault=vault, secret=name))
        return meta

    # -- writing ----------------------------------------------------------------

    async def write(
        self,
        ctx: RequestContext[Caller],
        vault: str,
        name: str,
        value: bytes,
        *,
        cas: int | None,
        pending: bool,
        max_versions: int | None,
        may_create: bool,
        idempotency_key: str | None = None,
    ) -> WriteOutcome:
        """Add a version. With ``idempotency_key`` (the request's ``Idempotency-Key``), a retry of the same
        request by the same token is answered with the first outcome instead of writing again
        (``outcome.replayed``); the key with another request is Unprocessable (422)."""
        claim = None
        if idempotency_key is not None:
            claim = IdempotencyClaim(
                ctx.verified_caller.token_id,
                idempotency_key,
                self._request_hash(vault, name, value, cas=cas, pending=pending, max_versions=max_versions),
                self._idempotency_ttl,
            )
        data_key = generate_data_key()
        org = str(ctx.verified_caller.org_id)

        def seal(version: int, data_key_id: int) -> bytes:
            return seal_value(data_key, value, SecretBinding(org, vault, name, version, data_key_id))

        async def audited(outcome: WriteOutcome, tx: object) -> None:
            detail: dict[str, object] = {"stage": outcome.stage, "created": outcome.created}
            if outcome.trimmed:
                detail["trimmed"] = list(outcome.trimmed)
            if outcome.replayed:
                detail["replayed"] = True  # the first write's outcome, answered again; nothing written
            await self._audit.record_in(
                tx, audit_event(ctx, "ok", vault=vault, secret=name, version=outcome.version, detail=detail)
            )

        outcome = await self._repo.write(
            ctx.verified_caller.org_id,
            vault,
            name,
            data_key=data_key,
            seal=seal,
            cas=cas,
            pending=pending,
            max_versions=max_versions,
            may_create=may_create,
            token_id=ctx.verified_caller.token_id,
            before_commit=audited,
            idempotency=claim,
        )
        if outcome.trimmed:
            self._data_keys.clear()  # the trimmed versions' keys leave memory with their rows
        return outcome

    def _request_hash(
        self, vault: str, name: str, value: bytes, *, cas: int | None, pending: bool, max_versions: int | None
    ) -> bytes:
        # Keyed: a plain hash of a low-entropy value stored beside the key would let anyone who
        # reads the table test guesses of the secret.
        options = json.dumps([vault, name, cas, pending, max_versions]).encode()
        message = len(options).to_bytes(4, "big") + options + value
        return hmac.digest(self._request_hash_key, message, "sha256")

    async def change_versions(
        self, ctx: RequestContext[Caller], vault: str, name: str, versions: Sequence[int], change: str
    ) -> list[int]:
        """Soft delete, undelete or destroy versions; one event naming the versions changed."""

        async def audited(changed: list[int], tx: object) -> None:
            await self._audit.record_in(
                tx,
                audit_event(
                    ctx, "ok", vault=vault, secret=name, detail={"requested": list(versions), "changed": changed}
                ),
            )

        changed = await self._repo.change_versions(ctx.verified_caller.org_id, vault, name, versions, change, audited)
        if change == "destroy":
            self._data_keys.clear()  # the destroyed versions' keys leave memory with their ciphertext
        return changed

    async def destroy_secret(self, ctx: RequestContext[Caller], vault: str, name: str) -> None:
        async def audited(_name: str, tx: object) -> None:
            await self._audit.record_in(
                tx, audit_event(ctx, "ok", vault=vault, secret=name, detail={"all_versions": True})
            )

        await self._repo.destroy_secret(ctx.verified_caller.org_id, vault, name, audited)
        self._data_keys.clear()

    async def promote(self, ctx: RequestContext[Caller], vault: str, name: str) -> tuple[int, int | None]:
        async def audited(result: tuple[int, int | None], tx: object) -> None:
            current, previous = result
            await self._audit.record_in(
                tx, audit_event(ctx, "ok", vault=vault, secret=name, version=current, detail={"previous": previous})
            )

        return await self._repo.promote(ctx.verified_caller.org_id, vault, name, audited)
