"""``cvault audit console`` as a user starts it: credentials from the environment, the address it prints."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.support.audited_store import Audited
from tests.support.cvault_command import cvault_command, cvault_env, run_cvault


def _env(a: Audited, tmp_path: Path, database_url: str) -> dict[str, str]:
    return cvault_env(
        {
            "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "CVAULT_STORE_URL": a.h.store_url,
            "CVAULT_AUTHORITY_URL": a.h.authority_url,
            "CVAULT_STORE_TOKEN": a.audit_token,
            "CVAULT_SESSION": a.auditor.session,
            "CVAULT_DATABASE_URL": database_url,
        }
    )


async def _serve_once(env: dict[str, str], listen: str) -> tuple[str, str, str]:
    """Start the console, fetch the page it announces, stop it; (first stdout line, page, stderr)."""
    process = await asyncio.create_subprocess_exec(
        *cvault_command("audit", "console", "--listen", listen),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert line.startswith("cvault audit console: open http://"), line
        url = line.split("open ", 1)[1].strip()
        url = url.replace("0.0.0.0", "127.0.0.1")
        async with aiohttp.ClientSession() as http, http.get(url + "chain") as resp:
            assert resp.status == 200
            page = await resp.text()
    finally:
        process.terminate()
        status = await process.wait()
    assert status == 0  # SIGTERM stops it cleanly
    return line, page, (await process.stderr.read()).decode()


async def test_the_command_serves_with_the_credentials_of_the_environment(
    audited: Audited, tmp_path: Path, database_url: str
) -> None:
    line, page, err = await _serve_once(_env(audited, tmp_path, database_url), "127.0.0.1:0")
    assert "http://127.0.0.1:" in line
    assert "Intact." in page
    assert "WARNING" not in err


async def test_listening_beyond_loopback_warns(audited: Audited, tmp_path: Path, database_url: str) -> None:
    _line, _page, err = await _serve_once(_env(audited, tmp_path, database_url), "0.0.0.0:0")
    assert "WARNING: listening on 0.0.0.0, not loopback" in err


async def test_bad_listen_address_and_missing_token_say_what_to_do(tmp_path: Path) -> None:
    env = cvault_env({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_STATE_HOME": str(tmp_path)})
    status, _out, err = await run_cvault("audit", "console", "--listen", "localhost", env=env)
    assert status == 1 and "use an IP address and a port" in err
    status, _out, err = await run_cvault("audit", "console", env=env)
    assert status == 1 and "CVAULT_STORE_TOKEN" in err
    status, out, _err = await run_cvault("audit", "console", "--help", env=env)
    assert status == 0 and "--listen HOST:PORT" in out and "--allow-host NAME" in out
