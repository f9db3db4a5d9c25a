"""Managed rotation's records (docs/rotation.md): a policy, its state, and a rotation leased to a rotator."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["STEPS", "TARGETS", "Claim", "RotationPolicy", "RotationStatus"]

TARGETS = ("postgres", "command")
STEPS = ("create", "set", "test", "promote")
# The step recorded once each of the first three is done (promote clears the record).
DONE = {"create": "created", "set": "set", "test": "tested"}


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """What an operator sets: how the secret is rotated and how often."""

    target: str  # "postgres" or "command"
    strategy: str  # "single" or "alternating" (postgres only)
    every_seconds: int
    admin_secret: str | None  # postgres: the secret holding the admin connection
    hook: str | None  # command: the name of the rotator's hook executable
    password_length: int


@dataclass(frozen=True, slots=True)
class RotationStatus:
    """A policy with where its rotations stand: what ``cvault rotation show|list|status`` print."""

    vault: str
    name: str
    policy: RotationPolicy
    enabled: bool
    next_due_at: dt.datetime
    holder: str | None
    lease_expires_at: dt.datetime | None
    step: str | None  # "created", "set", "tested": the rotation in progress reached it
    pending_version: int | None
    attempt: int  # failed attempts since the last success
    rotations: int
    last_success_at: dt.datetime | None
    last_rotated: int | None  # the version the last success made current
    last_failure_at: dt.datetime | None
    last_failure: str | None
    # postgres: the connection the policy was set for (ConnectionDocument.pin), JSON; internal, never shown.
    connection: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """A due rotation leased to one rotator until ``lease_expires_at``, to resume from ``step``."""

    status: RotationStatus
    connection: dict[str, object] | None  # postgres: the current value's public part (never the password)
    problem: str | None  # postgres: why the current value is no connection document, if it is not
