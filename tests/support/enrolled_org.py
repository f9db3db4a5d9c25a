"""An enrolled org on a :class:`~tests.support.harness.Harness`: the starting point of most end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .harness import Harness, User


@dataclass
class EnrolledOrg:
    """An enrolled org ``acme`` with vault ``prod``; ``owner`` holds the root store token."""

    h: Harness
    owner: User
    org: int
    auth: str  # owner's authority bundle (permission token + login discharge)
    root: str  # root store token
    bundle: str  # root store token + org discharge

    def path(self, rest: str) -> str:
        return f"/v1/orgs/{self.org}{rest}"

    def secret(self, name: str, vault: str = "prod") -> str:
        return self.path(f"/vaults/{vault}/secrets/{name}")


@pytest.fixture
async def world(harness: Harness) -> EnrolledOrg:
    return await world_of(harness)


async def world_of(h: Harness) -> EnrolledOrg:
    """Org ``acme`` (slug ``acme``) enrolled, vault ``prod`` created: the ``world`` fixture, for any harness."""
    return EnrolledOrg(h, *await h.enrolled_vault("owner@example.com", "acme"))
