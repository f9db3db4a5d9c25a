"""``cvault dev`` rough edges (issue 16): ports taken, operator exports, no platformdirs warning."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cvault_command import PROJECT_ROOT, cvault_command, cvault_env
from tests.support.dev_world import DevWorld, make_dev_world, run_cvault
from vault.storage.database import create_database, drop_database, with_database


@pytest.fixture(scope="module")
def w(postgres_server: str, template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWorld]:
    yield from make_dev_world(postgres_server, template_database, tmp_path_factory)


@pytest.fixture
def fresh_database(postgres_server: str, template_database: str) -> Iterator[str]:
    name = f"cvault_dev_{secrets.token_hex(6)}"
    asyncio.run(create_database(postgres_server, name, template=template_database))
    try:
        yield with_database(postgres_server, name)
    finally:
        asyncio.run(drop_database(postgres_server, name))


@pytest.mark.parametrize(("service", "flag", "variable"), [
    ("authority", "--authority-listen", "CVAULT_AUTHORITY_LISTEN"),
    ("store", "--store-listen", "CVAULT_STORE_LISTEN"),
])  # fmt: skip
def test_a_taken_port_is_named_with_the_setting_that_moves_it(
    fresh_database: str, tmp_path: Path, service: str, flag: str, variable: str
) -> None:
    with socket.socket() as taken, socket.socket() as free:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        free.bind(("127.0.0.1", 0))
        busy, other = taken.getsockname()[1], free.getsockname()[1]
        free.close()
        ports = {"authority": other, "store": other}
        ports[service] = busy
        env = cvault_env(
            {"CVAULT_DATABASE_URL": fresh_database, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
        )
        done = subprocess.run(
            cvault_command(
                "dev", "--data-dir", str(tmp_path / "data"),
                "--authority-listen", f"127.0.0.1:{ports['authority']}",
                "--store-listen", f"127.0.0.1:{ports['store'] if service == 'store' else other + 0}",
            ),
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 1, done
    assert f"the {service} cannot listen on 127.0.0.1:{busy}" in done.stderr, done.stderr
    assert flag in done.stderr and variable in done.stderr
    assert "listening" not in done.stdout + done.stderr and "ready" not in done.stdout


def test_dev_prints_the_exports_its_operator_commands_need(w: DevWorld) -> None:
    assert w.exports["CVAULT_MASTER_KEY_FILE"] == str(w.data_dir / "master.key")
    operator = {
        **w.op,
        "CVAULT_MASTER_KEY_FILE": w.exports["CVAULT_MASTER_KEY_FILE"],
        "CVAULT_DATABASE_URL": w.database_url,
    }
    r = run_cvault("keys", "rotate", env=operator)
    assert r.status == 0, r
    # The client commands still work in a shell holding those exports.
    r = run_cvault("secrets", "list", "--vault", "prod", env=operator)
    assert r.status == 0 and "db/url" in r.out, r


def test_the_embedded_postgres_start_warns_about_no_runtime_dir(tmp_path: Path) -> None:
    code = (
        "from pathlib import Path; from vault.storage.embedded import EmbeddedPostgres; "
        f"s = EmbeddedPostgres.start(Path({str(tmp_path / 'pg')!r}), delete_on_stop=True); s.stop()"
    )
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RuntimeDirWarning" not in done.stderr, done.stderr
