"""The rotator (``cvault serve rotator``; docs/rotation.md): claims due rotations from the store and drives each
through create -> set -> test -> promote.

It holds no key of the store: only a store token attenuated to rotation (its operations, write on the rotated
secrets, read on their admin secrets) and an authority credential for its org discharges, as any workload.
Each step is reported to the store, which checks the lease and the pending version before recording it and
audits it as the rotator's act. A step that fails at the target is reported as a failure (current untouched;
the store retries it after a backoff); a refusal by the store (the lease was lost) abandons the rotation to
whoever holds it now.

Resuming: the rotator never reads the rotated secret, so a rotation interrupted before ``test`` was recorded
starts again with a fresh pending version (the interrupted one loses its stage); one interrupted after ``test``
is promoted, since its pending credential was proven to work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vault.client import Client
from vault.client.rotation import Rotation
from vault.errors import VaultError
from vault.storage.rotation_target import PostgresTarget, TargetFailed
from vault.store.connection_document import CLONE_SUFFIX, ConnectionDocument, alternate_user, new_password
from vault.types import Random

from .rotation_hook import CommandHooks

__all__ = ["Rotator", "RotatorSettings"]

log = logging.getLogger("cvault.rotator")


@dataclass(frozen=True)
class RotatorSettings:
    vaults: tuple[str, ...]
    holder: str
    interval: float = 5.0
    lease_seconds: int = 60
    batch: int = 10
    concurrency: int = 8
    timeout: float = 10.0
    hooks: dict[str, Path] = field(default_factory=dict)
    # Tests only: after reporting this step, write ``pause_file`` and wait forever (to be killed there).
    pause_after: str | None = None
    pause_file: Path | None = None

    def __post_init__(self) -> None:
        # A step at the target starts only with a whole step's time of the lease left (see Rotator.rotate).
        if self.lease_seconds < self.timeout + 2:
            raise ValueError(f"the lease ({self.lease_seconds} s) must exceed the step timeout by 2 s at least")


class LeaseLost(Exception):
    """Too little of the lease is left to start a step at the target: another rotator may take over."""


class Rotator:
    def __init__(
        self,
        client: Client,
        settings: RotatorSettings,
        *,
        target: PostgresTarget | None = None,
        random: Random = os.urandom,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._settings = settings
        self._target = target or PostgresTarget(timeout=settings.timeout, random=random)
        self._hooks = CommandHooks(settings.hooks, timeout=settings.timeout)
        self._random = random
        self._monotonic = monotonic
        self.promoted = 0
        self.failed = 0
        self.abandoned = 0
        # Admin secrets read during one poll, shared by its rotations (one read per admin secret, not per rotation).
        self._admins: dict[tuple[str, str], asyncio.Task[ConnectionDocument]] = {}

    async def close(self) -> None:
        await self._target.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and rotate every ``interval`` seconds until ``stop`` is set."""
        log.info("rotator %s watching vaults %s", self._settings.holder, ", ".join(self._settings.vaults))
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except VaultError as exc:
                log.warning("cannot claim rotations: %s (%s)", exc.message, exc.code)
                busy = 0
            if busy:
                continue  # more may be due: claim again at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.interval)

    async def run_once(self) -> int:
        """Claim what is due in each vault and rotate it; the number of rotations claimed."""
        claimed = 0
        gate = asyncio.Semaphore(self._settings.concurrency)

        async def one(vault: str, rotation: Rotation) -> None:
            async with gate:
                await self.rotate(vault, rotation)

        settings = self._settings
        for vault in settings.vaults:
            rotations = await self._client.rotation.claim(
                vault, holder=settings.holder, limit=settings.batch, lease_seconds=settings.lease_seconds
            )
            claimed += len(rotations)
            try:
                await asyncio.gather(*(one(vault, r) for r in rotations))
            finally:
                self._admins.clear()
        return claimed

    async def _pause(self, step: str, name: str) -> None:
        if self._settings.pause_after == step and self._settings.pause_file is not None:
            self._settings.pause_file.write_text(f"{name} {step}\n")
            await asyncio.Event().wait()

    async def rotate(self, vault: str, r: Rotation) -> bool:
        """Drive one leased rotation to its end; True if it was promoted."""
        holder, lease = self._settings.holder, self._settings.lease_seconds
        rotation = self._client.rotation
        step = "create"
        # A step at the target starts only with a safe margin of the lease left (renewed by each report).
        deadline = self._monotonic() + lease - self._settings.timeout - 1

        def in_lease() -> None:
            if self._monotonic() > deadline:
                raise LeaseLost

        try:
            if r.problem is not None:
                raise TargetFailed(r.problem)
            if r.step == "tested" and r.pending_version is not None:
                step = "promote"
                version = r.pending_version
            else:
                password = new_password(r.password_length, self._random)
                value, doc = self._new_value(r, password)
                in_lease()
                written = await rotation.create(vault, r.name, holder=holder, value=value, lease_seconds=lease)
                version = written.version
                deadline = self._monotonic() + lease - self._settings.timeout - 1
                await self._pause("create", r.name)
                # The steps at the target, each reported (which renews the lease) before the next.
                for step, at_target in (("set", self._set), ("test", self._test)):
                    in_lease()
                    await at_target(vault, r, doc, value, version)
                    await rotation.advance(
                        vault, r.name, holder=holder, step=step, pending_version=version, lease_seconds=lease
                    )
                    deadline = self._monotonic() + lease - self._settings.timeout - 1
                    await self._pause(step, r.name)
                step = "promote"
            await rotation.promote(vault, r.name, holder=holder, pending_version=version)
            await self._pause("promote", r.name)
        except TargetFailed as exc:
            self.failed += 1
            log.warning("rotation of %s/%s failed at %s: %s", vault, r.name, step, exc.reason)
            try:
                await rotation.fail(vault, r.name, holder=holder, step=step, error=exc.reason)
            except VaultError as report:
                log.warning("cannot record the failure of %s/%s: %s", vault, r.name, report.message)
            return False
        except LeaseLost:
            self.abandoned += 1
            log.warning("rotation of %s/%s abandoned at %s: its lease is running out", vault, r.name, step)
            return False
        except VaultError as exc:
            # The store refused the step (lease lost, version no longer pending) or could not be reached: the
            # rotation is left to whoever holds it, or to the next claim once the lease expires.
            self.abandoned += 1
            log.warning("rotation of %s/%s stopped at %s: %s (%s)", vault, r.name, step, exc.message, exc.code)
            return False
        self.promoted += 1
        log.info("rotated %s/%s: version %s is current", vault, r.name, version)
        return True

    def _new_value(self, r: Rotation, password: str) -> tuple[str, ConnectionDocument | None]:
        if r.target != "postgres":
            return password, None
        if r.connection is None:
            raise TargetFailed("the store sent no connection for a postgres rotation")
        current = str(r.connection.get("user", ""))
        user = alternate_user(current) if r.strategy == "alternating" else current
        doc = ConnectionDocument.from_public(dict(r.connection), user=user, password=password)
        return doc.render(), doc

    async def _admin(self, vault: str, r: Rotation) -> ConnectionDocument:
        assert r.admin_secret is not None
        key = (vault, r.admin_secret)
        if key not in self._admins:
            self._admins[key] = asyncio.ensure_future(self._read_admin(vault, r.admin_secret))
        return await asyncio.shield(self._admins[key])

    async def _read_admin(self, vault: str, name: str) -> ConnectionDocument:
        try:
            secret = await self._client.store.read_secret(vault, name)
            return ConnectionDocument.parse(secret.value)
        except VaultError as exc:
            raise TargetFailed(f"cannot read the admin secret {name!r}: {exc.message}") from None

    async def _set(self, vault: str, r: Rotation, doc: ConnectionDocument | None, value: str, version: int) -> None:
        if doc is None:
            assert r.hook is not None
            await self._hooks.run(r.hook, "set", vault=vault, secret=r.name, pending_version=version, value=value)
            return
        admin = await self._admin(vault, r)
        clone = r.strategy == "alternating" and doc.user.endswith(CLONE_SUFFIX)
        await self._target.set_password(
            admin, doc.user, doc.password, member_of=doc.user.removesuffix(CLONE_SUFFIX) if clone else None
        )

    async def _test(self, vault: str, r: Rotation, doc: ConnectionDocument | None, value: str, version: int) -> None:
        if doc is None:
            assert r.hook is not None
            await self._hooks.run(r.hook, "test", vault=vault, secret=r.name, pending_version=version, value=value)
            return
        await self._target.test(doc)
