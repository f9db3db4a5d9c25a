"""The real OpenBao Agent and Proxy (``bao agent``, ``bao proxy``) living off ``cvault vault-token --sink``.

Both authenticate with ``auto_auth`` ``token_file`` pointed at the sink's file. The org
discharge lifetime is shortened to a few seconds (``org_discharge_ttl``) so that "past one
discharge lifetime" takes seconds: every bundle the agent or proxy started with has expired
by the time the last checks run, so they only pass if the program picked up a rewritten file.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.support.bao import Bao, bao_env, bao_process, free_port, wait_until_serving
from tests.support.cvault_command import cvault_command, cvault_env
from tests.support.enrolled_org import EnrolledOrg, world_of
from tests.support.harness import running_services
from vault.cli.vault_token import bundle_expiry

DISCHARGE_TTL = 8
MOUNT = "acme/prod"


@pytest.fixture
async def short_world(database_url: str) -> AsyncIterator[EnrolledOrg]:
    async with running_services(database_url, org_discharge_ttl=DISCHARGE_TTL) as h:
        yield await world_of(h)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, limit: float = 60) -> None:
    """Poll ``check`` until it holds: a generous bound on a loaded machine, not a timing assertion."""
    deadline = time.monotonic() + limit
    while not await check():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.2)


@asynccontextmanager
async def sink(w: EnrolledOrg, path: Path) -> AsyncIterator[None]:
    """``cvault vault-token --sink path``, the real command, until the block ends."""
    env = cvault_env(
        {
            "CVAULT_STORE_TOKEN": w.root,
            "CVAULT_AUTH_TOKEN": w.auth,
            "CVAULT_AUTHORITY_URL": w.h.authority_url,
            "CVAULT_STORE_URL": w.h.store_url,
            "HOME": os.environ.get("HOME", "/tmp"),
        }
    )
    process = await asyncio.create_subprocess_exec(
        *cvault_command("vault-token", "--sink", str(path)),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(lambda: _exists(path), "the sink wrote its file")
        yield
    finally:
        process.terminate()
        _out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()[-2000:]


async def _exists(path: Path) -> bool:
    return path.exists()


def _auto_auth(token_file: Path) -> str:
    return f'auto_auth {{\n  method "token_file" {{\n    config = {{ token_file_path = "{token_file}" }}\n  }}\n}}\n'


async def test_bao_agent_renders_a_template_across_sink_rotations(short_world: EnrolledOrg, tmp_path: Path) -> None:
    w = short_world
    cli = Bao(w.h.store_url + "/vault", w.bundle, tmp_path)
    await cli.ok("kv", "put", f"-mount={MOUNT}", "db/creds", "password=one")
    bundle, rendered = tmp_path / "bundle", tmp_path / "db-password"
    config = tmp_path / "agent.hcl"
    config.write_text(
        f'vault {{ address = "{w.h.store_url}/vault" }}\n'
        + _auto_auth(bundle)
        + 'template_config {\n  static_secret_render_interval = "1s"\n}\n'
        + "template {\n"
        + '  contents = "{{ with secret \\"acme/prod/data/db/creds\\" }}{{ .Data.data.password }}{{ end }}"\n'
        + f'  destination = "{rendered}"\n'
        + "}\n"
    )
    async with sink(w, bundle):
        first = bundle_expiry(bundle.read_text().strip())
        env = bao_env("", "", tmp_path)
        del env["BAO_ADDR"], env["BAO_TOKEN"]
        async with bao_process("agent", f"-config={config}", env=env, log=tmp_path / "agent.log") as agent:

            async def shows(value: str) -> bool:
                assert agent.returncode is None, (tmp_path / "agent.log").read_text()[-3000:]
                return rendered.exists() and rendered.read_text() == value

            await eventually(lambda: shows("one"), "the agent rendered the template")
            # A rotation: the secret changes while the agent's first token is alive.
            await cli.ok("kv", "put", f"-mount={MOUNT}", "db/creds", "password=two")
            await eventually(lambda: shows("two"), "the agent re-rendered the new value")
            # Past the first bundle's life: the agent must have re-read the rewritten file.
            await eventually(lambda: _after(first + 1), "the first bundle expired", limit=3 * DISCHARGE_TTL)
            assert bundle_expiry(bundle.read_text().strip()) > first  # the sink rewrote it
            await cli.ok("kv", "put", f"-mount={MOUNT}", "db/creds", "password=three", token=bundle.read_text().strip())
            # (Its log may show a refused render near an expiry on a loaded machine: renders are retried, so only
            # the rendered values are asserted, not the log.)
            await eventually(lambda: shows("three"), "the agent rendered with a later bundle")


async def _after(moment: float) -> bool:
    return time.time() > moment


async def test_bao_proxy_serves_reads_past_a_discharge_lifetime(short_world: EnrolledOrg, tmp_path: Path) -> None:
    w = short_world
    cli = Bao(w.h.store_url + "/vault", w.bundle, tmp_path)
    await cli.ok("kv", "put", f"-mount={MOUNT}", "app/key", "k=v")
    bundle, config = tmp_path / "bundle", tmp_path / "proxy.hcl"
    port = free_port()
    config.write_text(
        f'vault {{ address = "{w.h.store_url}/vault" }}\n'
        + _auto_auth(bundle)
        + "api_proxy {\n  use_auto_auth_token = true\n}\n"
        + f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
    )
    async with sink(w, bundle):
        first = bundle_expiry(bundle.read_text().strip())
        env = bao_env("", "", tmp_path)
        del env["BAO_ADDR"], env["BAO_TOKEN"]
        async with (
            bao_process("proxy", f"-config={config}", env=env, log=tmp_path / "proxy.log") as proxy,
            aiohttp.ClientSession() as http,
        ):
            url = f"http://127.0.0.1:{port}/v1/{MOUNT}/data/app/key"
            await wait_until_serving(http, f"http://127.0.0.1:{port}/v1/sys/health", proxy)
            reads = 0
            # Reads without a token: the proxy adds the one its auto_auth holds. They go on for 2 s past the first
            # bundle's end, by which time any read with it would have been refused.
            while time.time() < first + 2:
                async with http.get(url) as resp:
                    body = await resp.json()
                    assert resp.status == 200, (resp.status, body, (tmp_path / "proxy.log").read_text()[-3000:])
                    assert body["data"]["data"] == {"k": "v"}
                    reads += 1
                await asyncio.sleep(0.25)
            assert reads >= 10 and time.time() > first + 1  # the first bundle had long expired by the last read
