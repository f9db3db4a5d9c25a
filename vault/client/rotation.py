"""Managed rotation's routes (docs/rotation.md, docs/api.md), attenuated on use like every store call.

Operators set, show, list, disable and trigger policies; a rotator claims due rotations and reports their steps.
Replies are :class:`Rotation` values (a policy with where its rotations stand).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from vault.errors import BadRequest
from vault.macaroon import READ, Caveat, decode_token, encode_token
from vault.macaroon.access import CONTROL, WRITE
from vault.macaroon.caveats import Operations, Secrets, Vaults

from .credentials import TokenBundle
from .http import HTTP
from .models import MintedToken, Promoted, Written, _int, _opt_int, _opt_str, _parse
from .store import _check_name, _path, narrowing

__all__ = ["ROTATOR_OPERATIONS", "Rotation", "RotationClient"]

# What a rotator does at the store: claim, report steps, read the admin secret.
ROTATOR_OPERATIONS = ("rotation.claim", "rotation.step", "secrets.read")


class _Owner(Protocol):
    def store_org(self) -> int: ...

    async def store_bundle(self, caveats: list[Caveat], token: TokenBundle | None = None) -> str: ...


@dataclass(frozen=True, slots=True)
class Rotation:
    """A rotation policy and its state (``GET .../rotation/{name}``); a claim also carries ``connection``."""

    vault: str
    name: str
    target: str
    strategy: str
    every_seconds: int
    admin_secret: str | None
    hook: str | None
    password_length: int
    enabled: bool
    next_due_at: str
    holder: str | None
    lease_expires_at: str | None
    step: str | None
    pending_version: int | None
    attempt: int
    rotations: int
    last_success_at: str | None
    last_rotated: int | None
    last_failure_at: str | None
    last_failure: str | None
    connection: Mapping[str, Any] | None = field(default=None)
    problem: str | None = None

    @classmethod
    def from_json(cls, data: object) -> Rotation:
        def build(d: Mapping[str, Any]) -> Rotation:
            connection = d.get("connection")
            if connection is not None and not isinstance(connection, Mapping):
                raise TypeError
            enabled = d["enabled"]
            if not isinstance(enabled, bool):
                raise TypeError
            return cls(
                str(d["vault"]),
                str(d["name"]),
                str(d["target"]),
                str(d["strategy"]),
                _int(d["every_seconds"]),
                _opt_str(d.get("admin_secret")),
                _opt_str(d.get("hook")),
                _int(d["password_length"]),
                enabled,
                str(d["next_due_at"]),
                _opt_str(d.get("holder")),
                _opt_str(d.get("lease_expires_at")),
                _opt_str(d.get("step")),
                _opt_int(d.get("pending_version")),
                _int(d["attempt"]),
                _int(d["rotations"]),
                _opt_str(d.get("last_success_at")),
                _opt_int(d.get("last_rotated")),
                _opt_str(d.get("last_failure_at")),
                _opt_str(d.get("last_failure")),
                connection,
                _opt_str(d.get("problem")),
            )

        return _parse("rotation", build, data)

    @classmethod
    def list_from_json(cls, data: object) -> list[Rotation]:
        items = data.get("rotations") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            return _parse("rotation list", lambda _d: [], None)
        return [cls.from_json(i) for i in items]


class RotationClient:
    def __init__(self, http: HTTP, url: str, owner: _Owner) -> None:
        self._http = http
        self.url = url
        self._owner = owner

    async def _call(self, method: str, path: str, caveats: list[Caveat], body: Any = None) -> Any:
        bundle = await self._owner.store_bundle(caveats)
        return await self._http.request(method, self.url + path, authorization=f"Bearer {bundle}", body=body)

    def _named(self, vault: str, kind: str, name: str) -> str:
        base = _path("/v1/orgs", self._owner.store_org(), "vaults", vault, kind)
        return f"{base}/{quote(_check_name(name), safe='/')}"

    # -- operators ------------------------------------------------------------------

    async def set_policy(
        self,
        vault: str,
        name: str,
        *,
        target: str,
        every_seconds: int,
        strategy: str = "single",
        admin_secret: str | None = None,
        hook: str | None = None,
        password_length: int = 32,
    ) -> Rotation:
        body = {
            "target": target,
            "strategy": strategy,
            "every_seconds": every_seconds,
            "admin_secret": admin_secret,
            "hook": hook,
            "password_length": password_length,
        }
        # Narrowed to this secret (C) and, when named, its admin secret (r): the store checks that whoever sets
        # a policy may read the admin secret it makes rotators read.
        caveats = narrowing("rotation.set_policy", CONTROL, vault=vault, secret=name)
        if admin_secret is not None:
            caveats = [
                Operations(("rotation.set_policy",)),
                Vaults(((vault, CONTROL | READ),)),
                Secrets(((f"{_check_name(name)}$", CONTROL), (f"{_check_name(admin_secret)}$", READ))),
            ]
        reply = await self._call(
            "PUT", self._named(vault, "rotation", name), caveats, {k: v for k, v in body.items() if v is not None}
        )
        return Rotation.from_json(reply)

    async def show(self, vault: str, name: str) -> Rotation:
        reply = await self._call(
            "GET", self._named(vault, "rotation", name), narrowing("rotation.show", READ, vault=vault, secret=name)
        )
        return Rotation.from_json(reply)

    async def list_policies(self, vault: str) -> list[Rotation]:
        path = _path("/v1/orgs", self._owner.store_org(), "vaults", vault, "rotations")
        return Rotation.list_from_json(await self._call("GET", path, narrowing("rotation.list", READ, vault=vault)))

    async def disable(self, vault: str, name: str) -> Rotation:
        reply = await self._call(
            "DELETE",
            self._named(vault, "rotation", name),
            narrowing("rotation.disable", CONTROL, vault=vault, secret=name),
        )
        return Rotation.from_json(reply)

    async def rotate_now(self, vault: str, name: str) -> Rotation:
        reply = await self._call(
            "POST",
            self._named(vault, "rotate", name),
            # C too, when the token has it: the store enables a disabled policy again only for control.
            narrowing("rotation.now", WRITE | CONTROL, vault=vault, secret=name),
        )
        return Rotation.from_json(reply)

    async def rotator_token(
        self, vault: str, names: Sequence[str] = (), *, prefix: str | None = None, ttl: int | None = None
    ) -> str:
        """A store token for a rotator of ``names`` (or of every secret under ``prefix``): write on them, read on
        their admin secrets, and only the operations rotation needs (claim, step, read). Minted by the store, then
        attenuated here. Writing is possible only through rotation steps (``Operations``), which need a policy and
        a lease, so a prefix grants no write on a secret without a policy."""
        secrets: dict[str, str] = {f"{_check_name(name)}$": "w" for name in names}
        admins = {(await self.show(vault, name)).admin_secret for name in names}
        if prefix is not None:
            secrets[prefix] = "w"
            admins |= {p.admin_secret for p in await self.list_policies(vault) if p.name.startswith(prefix)}
        if not secrets:
            raise BadRequest("name the rotated secrets (or a prefix) the rotator's token is for")
        secrets.update({f"{admin}$": "r" for admin in admins if admin is not None})
        reply = await self._call(
            "POST",
            _path("/v1/orgs", self._owner.store_org(), "tokens"),
            narrowing("tokens.mint", CONTROL),
            {"mask": "rw", "vaults": {vault: "rw"}, "secrets": secrets, **({"ttl": ttl} if ttl else {})},
        )
        minted = MintedToken.from_json(reply)
        return encode_token(decode_token(minted.token).attenuate([Operations(ROTATOR_OPERATIONS)]))

    # -- rotators ------------------------------------------------------------------------

    async def claim(self, vault: str, *, holder: str, limit: int, lease_seconds: int) -> list[Rotation]:
        path = _path("/v1/orgs", self._owner.store_org(), "vaults", vault, "rotations", "claim")
        body = {"holder": holder, "limit": limit, "lease_seconds": lease_seconds}
        return Rotation.list_from_json(
            await self._call("POST", path, narrowing("rotation.claim", WRITE, vault=vault), body)
        )

    async def _step(self, vault: str, name: str, body: dict[str, Any]) -> Any:
        return await self._call(
            "POST",
            self._named(vault, "rotation-step", name),
            narrowing("rotation.step", WRITE, vault=vault, secret=name),
            body,
        )

    async def create(self, vault: str, name: str, *, holder: str, value: str, lease_seconds: int) -> Written:
        body = {"step": "create", "holder": holder, "value": value, "lease_seconds": lease_seconds}
        return Written.from_json(await self._step(vault, name, body))

    async def advance(
        self, vault: str, name: str, *, holder: str, step: str, pending_version: int, lease_seconds: int
    ) -> Rotation:
        body = {"step": step, "holder": holder, "pending_version": pending_version, "lease_seconds": lease_seconds}
        return Rotation.from_json(await self._step(vault, name, body))

    async def promote(self, vault: str, name: str, *, holder: str, pending_version: int) -> Promoted:
        body = {"step": "promote", "holder": holder, "pending_version": pending_version}
        return Promoted.from_json(await self._step(vault, name, body))

    async def fail(self, vault: str, name: str, *, holder: str, step: str, error: str) -> Rotation:
        return Rotation.from_json(await self._step(vault, name, {"step": step, "holder": holder, "error": error}))
