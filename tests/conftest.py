"""Test infrastructure: every storage test runs against a real PostgreSQL, never a mock.

Server (once per session, fixture ``postgres_server``):
    ``CVAULT_TEST_DATABASE_URL`` if set (any existing database on the server, e.g.
    ``postgresql://postgres@127.0.0.1:5432/test``; the role needs CREATEDB), otherwise
    an embedded PostgreSQL from the ``pgserver`` wheel in a temporary directory,
    deleted at the end of the session.

Template (once per session, fixture ``template_database``):
    a database ``cvault_tmpl_<random>`` migrated with the project's ``sql/``
    files, so a test database costs one ``CREATE DATABASE ... TEMPLATE``, not a
    migration run. Random names mean a crashed run's leftovers never collide with
    a later run; the template is dropped at session end.

Per test (function scope; use these):
    ``database_url``        DSN of a fresh, migrated database (cloned ahead, dropped after the test).
    ``empty_database_url``  DSN of a fresh database with no migrations (migration tests).
    ``pool``                a pool from :func:`vault.storage.pool.create_pool` on
                            ``database_url``; closed before the database is dropped.
    ``master_key``          a random :class:`vault.crypto.keyring.MasterKey`.
    ``admin_dsn``           DSN of the server's admin database (to create more databases).

Each test owns its database, so tests may commit, use several connections, and
run DDL freely. Session fixtures are synchronous (``asyncio.run``) so they do
not tie every test to one event loop.

In parallel (``pytest -n 2``, pytest-xdist) every worker is a process with its own
session: its own template (random names keep them apart) and, without
``CVAULT_TEST_DATABASE_URL``, its own embedded server.

Markers (given here by path, in one table, so a file's marker is not an edit of the file):
    ``serial``  must not share the machine with other tests: ``scripts/check`` runs these in
                a second, serial pytest after the parallel one (``-m "not serial"``).
    ``slow``    seconds each (subprocesses, a browser, real waits), and every serial test:
                ``pytest -n 2 -m "not slow"`` is the fast set (docs/testing.md has its timings).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from vault.config import default_sql_dir
from vault.crypto.keyring import MasterKey, generate_key
from vault.storage.database import create_database, drop_database, with_database
from vault.storage.embedded import EmbeddedPostgres
from vault.storage.migrations import migrate
from vault.storage.pool import Pool, close_pool, create_pool

# Fixtures of the authority tests (an app on the test database, helpers).
pytest_plugins = ["tests.support.authority_app"]

SQL_DIR = default_sql_dir()
TESTS = Path(__file__).parent

# Markers by path: a folder (every file under it) or a file, relative to tests/. Why each is serial: what it does
# that a test running beside it would break, or be broken by.
SERIAL: dict[str, str] = {
    "faults": "kills, stops and freezes its own PostgreSQL cluster and store processes, on fixed ports it reuses;"
    " its bounds assume the CPU is not shared with the rest of the suite",
    "cli/test_dev.py": "starts `cvault dev` on an embedded PostgreSQL (pgserver), which once failed to start while the"
    " parallel run loaded the machine (unexplained: `cvault dev` exited after creating its master key)",
    "operations/test_compose_engine.py": "the shipped compose file publishes the fixed ports 8201/8202 on a Docker"
    " engine",
    "operations/test_readme_main_job.py": "the README's main job runs `cvault dev` on its default ports 8201/8202",
}

# Measured with --durations (docs/testing.md): the folders and files whose tests take seconds each, and why.
# Longest first: the parallel pass hands out files in this order (pytest_collection_modifyitems), so the longest
# ones start at once instead of running alone at the end.
_CLI = "runs `cvault` (and mostly `cvault dev`) as processes"
SLOW: dict[str, str] = {
    "store/test_openapi_contract.py": "schemathesis's CLI: thousands of generated requests (about a minute and a half)",
    "authority/test_openapi_contract.py": "schemathesis's CLI: about a thousand generated requests (about a minute)",
    "cli/test_vault_token.py": "a sink running through three discharge lifetimes",
    "vault_api/test_bao_agent.py": "the real `bao agent` and `bao proxy` through discharge lifetimes",
    "vault_api/test_conformance.py": "about 60 steps against `bao server -dev` and cvault",
    "vault_api/test_bao_cli.py": "the real `bao` CLI as processes",
    "browser": "a real Chromium",
    "tokens/test_decoder_fuzz.py": "property-based fuzzing of the token parser",
    "tokens/test_properties.py": "property-based token checks",
    "store/test_batch_read_scope.py": _CLI,
    "authority/test_invitations.py": _CLI,
    "authority/test_invitation_email.py": "an SMTP server in process, with TLS",
    "authority/test_workload_identity.py": "an OIDC issuer over TLS and both services",
    "authority/test_workload_clients.py": "`cvault run` and `bao agent` as processes",
    "vault_api/test_kv_node.py": "the Node.js clients as processes",
    "cli/test_acceptance.py": _CLI,
    "cli/test_audit_console_command.py": _CLI,
    "cli/test_completion.py": _CLI,
    "cli/test_dev.py": _CLI,
    "cli/test_dev_edges.py": _CLI,
    "cli/test_exit_status.py": "every command as a process against one `cvault dev`",
    "cli/test_hang.py": _CLI,
    "cli/test_imports.py": _CLI,
    "cli/test_keys_status.py": _CLI,
    "cli/test_local_files_and_errors.py": _CLI,
    "cli/test_master_key_command.py": _CLI,
    "cli/test_rough_edges.py": _CLI,
    "cli/test_run_watch.py": "a watcher running through two discharge renewals; " + _CLI,
    "cli/test_tokens.py": _CLI,
    "cli/test_service_token_lifetime.py": _CLI,
    "operations/test_compose.py": "docker-compose as a process",
    "operations/test_connection_limits.py": "servers as processes, one out of file descriptors",
    "operations/test_deployment_without_containers.py": "two `cvault serve` processes with their own roles and TLS",
    "operations/test_key_rotation.py": "rotations under concurrent traffic",
    "operations/test_logs.py": "`cvault serve` as a process",
    "operations/test_master_rotation.py": "a master key rotation under load",
    "operations/test_rotation_crash.py": "the rotator as a process, killed with kill -9 between steps",
    "operations/test_restore_drill.py": "pg_dump and pg_restore of both services' databases",
    "operations/test_database_roles.py": "roles and schemas made and migrated on the server, per test",
    "operations/test_rotation_failures.py": "a PostgreSQL cluster of its own, stopped and started",
    "operations/test_rotation_postgres.py": "a PostgreSQL cluster of its own with real roles",
    "operations/test_rotation_watch.py": "`cvault run --watch` across three rotations",
    "operations/test_serve_workers.py": "`cvault serve` with worker processes",
    "operations/test_ticket_key_rotation.py": "rotations under traffic on two nodes",
    "operations/test_tls.py": "a certificate authority, `cvault dev --tls` and hvac over HTTPS",
    "operations/test_token_key_rotation.py": "rotations on two nodes",
    "operations/test_two_nodes.py": "two store nodes",
}


def pytest_configure(config: pytest.Config) -> None:
    # Here, not in pyproject.toml: pytest imports a warning filter's class (aiohttp's) before any conftest.
    config.addinivalue_line("filterwarnings", "error::aiohttp.web_exceptions.NotAppKeyWarning")
    config.addinivalue_line("markers", "serial: run alone, after the parallel run (scripts/check)")
    config.addinivalue_line("markers", "slow: seconds per test; `-m 'not slow'` is the fast set")
    for table in (SERIAL, SLOW, NO_COVER):
        for name in table:
            assert (TESTS / name).exists(), f"tests/conftest.py names tests/{name}, which does not exist"


# Property-based fuzzing of pure code that the other tests cover: under coverage it costs about twice its time
# (docs/testing.md), for no line it alone reaches.
NO_COVER: dict[str, str] = {
    "tokens/test_decoder_fuzz.py": "the token parser, covered by tokens/test_vectors.py and the unit tests",
    "tokens/test_properties.py": "the token core, covered by tokens/test_vectors.py and the unit tests",
}


def _names(item: pytest.Item) -> list[str]:
    part = item.path.relative_to(TESTS).parts
    return ["/".join(part[:n]) for n in range(1, len(part) + 1)]  # its folders, then the file


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    order = {name: rank for rank, name in enumerate(SLOW)}
    for item in items:
        for name in _names(item):
            if name in SERIAL:
                item.add_marker(pytest.mark.serial)
            if name in SERIAL or name in SLOW:
                item.add_marker(pytest.mark.slow)
            if name in NO_COVER:
                item.add_marker(pytest.mark.no_cover)
    # Slow files first, longest first (a stable sort: a file's tests keep their order); with
    # `--no-loadscope-reorder`, pytest-xdist hands files to workers in this order.
    items.sort(key=lambda item: min((order[n] for n in _names(item) if n in order), default=len(order)))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--crash-cycles",
        type=int,
        default=2,
        help="kill -9 cycles of the store in tests/faults (default 2; the issue's acceptance run uses 5 or more)",
    )
    parser.addoption(
        "--soak-seconds",
        type=float,
        default=0.0,
        help="run tests/faults/test_memory_soak.py for this long (default 0: skipped; the issue's run: 300)",
    )


def _random_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Admin DSN of the session's PostgreSQL server."""
    url = os.environ.get("CVAULT_TEST_DATABASE_URL")
    if url:
        yield url
        return
    directory = Path(tempfile.mkdtemp(prefix="cvault-test-pg-"))
    server = EmbeddedPostgres.start(directory / "pgdata", delete_on_stop=True)
    try:
        yield server.dsn()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def _create_template(admin_dsn: str, name: str) -> None:
    await create_database(admin_dsn, name)
    pool = await create_pool(with_database(admin_dsn, name), max_size=1)
    try:
        await migrate(pool, sql_dir=SQL_DIR)
    finally:
        await close_pool(pool)


@pytest.fixture(scope="session")
def template_database(postgres_server: str) -> Iterator[str]:
    """Name of the session's migrated template database."""
    name = _random_name("cvault_tmpl")
    try:
        asyncio.run(_create_template(postgres_server, name))
        yield name
    finally:
        asyncio.run(drop_database(postgres_server, name))


@pytest.fixture
def admin_dsn(postgres_server: str) -> str:
    return postgres_server


class _Databases:
    """Fresh databases cloned from the template: the next one made while a test runs, each dropped behind it.

    A clone and a drop cost about a second together on a busy server (WAL and fsync, not CPU),
    as much as many a test itself; made ahead and dropped behind, in threads, they overlap the tests.
    """

    def __init__(self, admin_dsn: str, template: str) -> None:
        self._admin = admin_dsn
        self._template = template
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cvault-test-databases")
        self._next = self._threads.submit(self._create)
        self._drops: list[Future[None]] = []

    def _create(self) -> str:
        name = _random_name("cvault_test")
        asyncio.run(create_database(self._admin, name, template=self._template))
        return name

    def take(self) -> str:
        """A database no test has used (made ahead), and the next one started."""
        ready, self._next = self._next, self._threads.submit(self._create)
        return ready.result()

    def drop(self, name: str) -> None:
        self._drops.append(self._threads.submit(asyncio.run, drop_database(self._admin, name)))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the spare may have failed as the server went away
            self.drop(self._next.result())
        try:
            for done in self._drops:
                done.result()  # a drop that failed is reported, not left behind silently
        finally:
            self._threads.shutdown()


@pytest.fixture(scope="session")
def _databases(postgres_server: str, template_database: str) -> Iterator[_Databases]:
    databases = _Databases(postgres_server, template_database)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def database_url(postgres_server: str, _databases: _Databases) -> Iterator[str]:
    name = _databases.take()
    try:
        yield with_database(postgres_server, name)
    finally:
        _databases.drop(name)


@pytest.fixture
async def empty_database_url(postgres_server: str) -> AsyncIterator[str]:
    name = _random_name("cvault_empty")
    await create_database(postgres_server, name)
    try:
        yield with_database(postgres_server, name)
    finally:
        await drop_database(postgres_server, name)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    created = await create_pool(database_url, min_size=1, max_size=10)
    try:
        yield created
    finally:
        await close_pool(created)


@pytest.fixture
def master_key() -> MasterKey:
    return MasterKey(generate_key())


# The audit console serving a store with a history (tests/support/audited_store.py).
from tests.support.audited_store import audited  # noqa: E402, F401

# The end-to-end fixtures: ``harness`` (both services on real ports) and ``world`` (an enrolled org on it).
from tests.support.enrolled_org import world  # noqa: E402, F401
from tests.support.harness import harness  # noqa: E402, F401

# Every log line of the suite is checked for credentials (issue 14).
from tests.support.log_guard import log_guard  # noqa: E402, F401
