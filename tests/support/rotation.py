"""Managed rotation's test world: the store and authority, an org, and a PostgreSQL that checks passwords.

The rotated roles live on a cluster of the session's own whose ``pg_hba.conf`` asks every role but ``postgres``
for its SCRAM password over TCP. The shared test server trusts every connection from 127.0.0.1, so a rotation
tested there would pass with any password at all: a test of "the old password fails" could not fail. Roles get
random names and are dropped after each test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.faults.cluster import Cluster, reap_stale_clusters
from vault.client import Client, Credentials, TokenBundle
from vault.store.connection_document import ConnectionDocument

from .harness import Harness, User, running_services

__all__ = [
    "Clocks",
    "PasswordCluster",
    "Roles",
    "RotationWorld",
    "can_connect",
    "current",
    "password_cluster",
    "pg",
    "rotation_world",
    "rw",
]

HBA = """
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


@dataclass
class PasswordCluster:
    cluster: Cluster

    @property
    def port(self) -> int:
        return self.cluster.port

    async def superuser(self) -> asyncpg.Connection:
        return await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres", database="postgres")


@contextmanager
def password_cluster() -> Iterator[PasswordCluster]:
    reap_stale_clusters()
    root = Path(tempfile.mkdtemp(prefix="cvault-faults-pg-"))  # the faults suite's prefix: reaped alike
    (root / "owner.pid").write_text(str(os.getpid()))
    cluster = Cluster(root)
    try:
        cluster.init()
        (cluster.pgdata / "pg_hba.conf").write_text(HBA)
        cluster.start()
        yield PasswordCluster(cluster)
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Roles:
    """An admin role (CREATEROLE) and an application role, with random names and passwords."""

    port: int
    admin: str
    admin_password: str
    app: str
    app_password: str

    def doc(self, user: str, password: str, form: str = "url") -> ConnectionDocument:
        return ConnectionDocument(form, "127.0.0.1", self.port, "postgres", user, password, "disable")

    @property
    def clone(self) -> str:
        return self.app + "_clone"


async def create_roles(pg: PasswordCluster) -> Roles:
    suffix = secrets.token_hex(4)
    roles = Roles(pg.port, f"rot_admin_{suffix}", secrets.token_hex(12), f"rot_app_{suffix}", secrets.token_hex(12))
    conn = await pg.superuser()
    try:
        await conn.execute(f"CREATE ROLE {roles.admin} LOGIN CREATEROLE PASSWORD '{roles.admin_password}'")
        await conn.execute(f"CREATE ROLE {roles.app} LOGIN PASSWORD '{roles.app_password}'")
    finally:
        await conn.close()
    return roles


async def drop_roles(pg: PasswordCluster, roles: Roles) -> None:
    conn = await pg.superuser()  # a new connection: a test may have restarted the server
    try:
        for role in (roles.clone, roles.app, roles.admin):
            await conn.execute(f"DROP ROLE IF EXISTS {role}")
    finally:
        await conn.close()


@asynccontextmanager
async def real_roles(pg: PasswordCluster) -> AsyncIterator[Roles]:
    roles = await create_roles(pg)
    try:
        yield roles
    finally:
        await drop_roles(pg, roles)


async def can_connect(doc: ConnectionDocument) -> bool:
    try:
        conn = await asyncpg.connect(
            host=doc.host, port=doc.port, user=doc.user, password=doc.password, database=doc.dbname, ssl=False
        )
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
        return False
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


@dataclass
class RotationWorld:
    h: Harness
    owner: User
    org: int
    root: str
    roles: Roles
    service_token: str  # the rotator's authority credential (a service token)
    clock: Callable[[], float] = time.time  # every client's, unless one is given (tests move it with the services')

    def owner_client(self, **kw: Any) -> Client:
        creds = Credentials.from_text(store_token=self.root, session=self.owner.session)
        kw.setdefault("clock", self.clock)
        return Client(store_url=self.h.store_url, authority_url=self.h.authority_url, credentials=creds, **kw)

    def client_with(self, store_token: str, **kw: Any) -> Client:
        """A workload's client: ``store_token`` and the service token, no session."""
        creds = Credentials.from_text(store_token=store_token, authority_token=self.service_token)
        kw.setdefault("clock", self.clock)
        return Client(store_url=self.h.store_url, authority_url=self.h.authority_url, credentials=creds, **kw)

    async def rotator_token(self, *names: str) -> str:
        async with self.owner_client() as c:
            return await c.rotation.rotator_token("prod", names)


class Clocks:
    """The store's, the authority's and the rotator's clocks, moved together."""

    def __init__(self, rw: RotationWorld) -> None:
        self.rw, self.offset = rw, 0.0
        rw.clock = self

    def __call__(self) -> float:
        return time.time() + self.offset

    def shift(self, seconds: float) -> None:
        self.offset += seconds
        self.rw.h.store_clock.offset += seconds
        self.rw.h.authority_clock.offset += seconds


async def current(rw: RotationWorld, name: str = "db/url") -> tuple[int, ConnectionDocument]:
    """The secret's current version and its document, read by the owner."""
    async with rw.owner_client() as c:
        secret = await c.store.read_secret("prod", name)
    return secret.version, ConnectionDocument.parse(secret.value)


@pytest.fixture(scope="module")
def pg() -> Iterator[PasswordCluster]:
    """One password-checking cluster per test module (initdb costs seconds)."""
    with password_cluster() as cluster:
        yield cluster


@pytest.fixture
async def rw(database_url: str, pg: PasswordCluster) -> AsyncIterator[RotationWorld]:
    async with rotation_world(database_url, pg) as world:
        yield world


@asynccontextmanager
async def rotation_world(database_url: str, pg: PasswordCluster, **settings: Any) -> AsyncIterator[RotationWorld]:
    async with running_services(database_url, **settings) as h, real_roles(pg) as roles:
        owner = await h.new_user(f"owner-{secrets.token_hex(3)}@example.com")
        org = await h.create_org(owner, "acme")
        async with Client(
            store_url=h.store_url, authority_url=h.authority_url, credentials=Credentials(session=owner.session)
        ) as c:
            root = (await c.store.enroll(org, "acme")).token
        world = RotationWorld(h, owner, org, root, roles, "")
        async with world.owner_client() as c:
            await c.store.create_vault("prod")
            await c.store.write_secret("prod", "db/admin", roles.doc(roles.admin, roles.admin_password).render())
            await c.store.write_secret("prod", "db/url", roles.doc(roles.app, roles.app_password).render())
            permission = await c.authority.create_token(org, mask="rw")
            service = await c.authority.strip(TokenBundle.parse(permission.token, what="permission"))
        world.service_token = service.token
        yield world
