"""What ``cvault dev`` runs once the database is ready: both services, and a first owner, org and vault.

On an empty database it bootstraps an owner (generated password), an org and a
session, enrols the org at the store, creates the vault ``default``, saves the
session like ``cvault login`` does, and keeps what it made in
``<data-dir>/dev.json`` (mode 0600: the dev password and the root store token)
so a restart prints the same exports. It then prints copy-pasteable ``export``
lines and a first ``cvault secrets set`` / ``cvault run``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shlex
import stat
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from vault.authority.revocation_feed import new_feed_token
from vault.client import Client, Credentials
from vault.client.authority_models import Session
from vault.client.session_file import SessionFile
from vault.config import Config
from vault.errors import ConfigError, ConnectionFailed, VaultError
from vault.storage.accounts import PgAccountRepository
from vault.storage.pool import Pool
from vault.web.authority import create_authority_app
from vault.web.runner import serve_app
from vault.web.store import create_store_app

from .bootstrap import run_bootstrap
from .login import save_session

__all__ = ["DEV_EMAIL", "DEV_ORG", "DEV_VAULT", "run_dev_services"]

DEV_EMAIL = "owner@cvault.dev"
DEV_ORG = "dev"
DEV_VAULT = "default"
_READY_TIMEOUT = 30.0

Say = Callable[[str], None]


def dev_ca_file(data_dir: Path) -> Path:
    """The local CA certificate of ``cvault dev --tls`` (clients trust it through CVAULT_CACERT)."""
    return data_dir / "tls" / "ca.pem"


def _ca(config: Config) -> str | None:
    return str(dev_ca_file(config.data_dir)) if config.tls_cert_file is not None else None


def _dev_urls(config: Config) -> Config:
    # Local by definition: each service is reached where it listens. The store follows the
    # authority's revocation feed with a token made for this run (docs/revocation.md).
    scheme = "https" if config.tls_cert_file is not None else "http"
    feed_token, feed_digest = new_feed_token()
    return replace(
        config,
        authority_url=f"{scheme}://{config.authority_listen}",
        store_url=f"{scheme}://{config.store_listen}",
        revocation_feed_token=feed_token,
        revocation_feed_token_sha256=(feed_digest,),
        revocation_feed_ca_file=dev_ca_file(config.data_dir) if config.tls_cert_file is not None else None,
    )


async def _wait_ready(url: str, task: asyncio.Task[None], ca_cert: str | None) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _READY_TIMEOUT
    async with Client(store_url=url, authority_url=url, timeout=2.0, ca_cert=ca_cert) as client:
        while True:
            if task.done():
                task.result()  # raises what stopped the service (e.g. the port is taken)
                raise ConfigError(f"the service at {url} stopped during start-up")
            try:
                await client.http.request("GET", url + "/healthz")
                return
            except ConnectionFailed:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)


def _load_state(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{path} is accessible by other users; run `chmod 600 {path}`")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise ConfigError(f"{path} is damaged; delete the data directory to start afresh") from None
    return data if isinstance(data, dict) else {}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)


async def _first_start(config: Config, pool: Pool, say: Say) -> dict[str, Any]:
    password = secrets.token_urlsafe(18)
    done = await run_bootstrap(config, DEV_EMAIL, DEV_ORG, password, pool=pool)
    credentials = Credentials(session=done.session_secret)
    async with Client(
        store_url=config.store_url, authority_url=config.authority_url, credentials=credentials, ca_cert=_ca(config)
    ) as c:
        enrolled = await c.store.enroll(done.org.id, done.org.slug)
    credentials = Credentials.from_text(store_token=enrolled.token, session=done.session_secret)
    async with Client(
        store_url=config.store_url, authority_url=config.authority_url, credentials=credentials, ca_cert=_ca(config)
    ) as c:
        await c.store.create_vault(DEV_VAULT)
    say(
        f"bootstrapped owner {DEV_EMAIL}, org {DEV_ORG!r} (id {done.org.id}) enrolled at the store, vault {DEV_VAULT!r}"
    )
    return {
        "email": DEV_EMAIL,
        "password": password,
        "org_id": done.org.id,
        "org": done.org.slug,
        "store_token": enrolled.token,
        "session": done.session_secret,
        "user_id": done.user.id,
    }


async def _ensure_session(config: Config, state: dict[str, Any], say: Say) -> None:
    """Save a working session for the dev owner (logging in again if the saved one expired)."""
    credentials = Credentials(session=state["session"])
    async with Client(
        store_url=config.store_url, authority_url=config.authority_url, credentials=credentials, ca_cert=_ca(config)
    ) as c:
        try:
            session = Session(state["session"], (await c.authority.me()).user_id)
        except VaultError:
            session = await c.authority.login(state["email"], state["password"])
            state["session"] = session.session
    file = SessionFile()
    save_session(file, config.authority_url, config.store_url, state["email"], session)
    say(f"logged in as {state['email']} (password in the data directory's dev.json); session saved in {file.path}")


def _print_exports(config: Config, state: dict[str, Any], operator: Sequence[str] = ()) -> None:
    lines = [
        f"export CVAULT_AUTHORITY_URL={shlex.quote(config.authority_url)}",
        f"export CVAULT_STORE_URL={shlex.quote(config.store_url)}",
    ]
    if config.tls_cert_file is not None:
        lines.append(f"export CVAULT_CACERT={shlex.quote(str(dev_ca_file(config.data_dir)))}")
    if not state:
        print("\n".join(lines), flush=True)
        return
    lines += [
        f"export CVAULT_STORE_TOKEN={shlex.quote(state['store_token'])}",
        f"export CVAULT_VAULT={DEV_VAULT}",
        *operator,
        "# then, in that shell:",
        "#   printf %s 'postgres://app:s3cret@db/app' | cvault secrets set db/url",
        "#   cvault run -- sh -c 'echo $DB_URL'",
    ]
    print("\n".join(lines), flush=True)


async def run_dev_services(
    config: Config,
    pool: Pool,
    stop: asyncio.Event,
    say: Say,
    ready: Callable[[], None],
    operator_exports: Sequence[str] = (),
) -> None:
    config = _dev_urls(config)
    inner = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        authority = asyncio.create_task(
            serve_app(create_authority_app(config, pool=pool), config.authority_listen, inner, config)
        )
        tasks.append(authority)
        await _wait_ready(config.authority_url, authority, _ca(config))
        async with Client(store_url=config.store_url, authority_url=config.authority_url, ca_cert=_ca(config)) as c:
            keys = await c.authority.keys()
        # metrics_listen is the authority's: one address cannot serve two registries.
        store_config = replace(
            config, authority_org_public_key=base64.b64decode(keys.org.public_key), metrics_listen=None
        )
        store = asyncio.create_task(
            serve_app(create_store_app(store_config, pool=pool), config.store_listen, inner, store_config)
        )
        tasks.append(store)
        await _wait_ready(config.store_url, store, _ca(config))
        say(f"authority on {config.authority_url}, store on {config.store_url}")
        if config.smtp_url is None:
            # No relay in development: the messages an invitee needs (verification codes) are files.
            say(f"mail the authority sends is written to {config.data_dir / 'mail'} (set CVAULT_SMTP_URL to send it)")

        state_path = config.data_dir / "dev.json"
        state = _load_state(state_path)
        if not state:
            if await PgAccountRepository(pool).count_users():
                say("the database already has users (not made by this data directory): no bootstrap; use cvault login")
            else:
                state = await _first_start(config, pool, say)
                _save_state(state_path, state)
        if state:
            await _ensure_session(config, state, say)
            _save_state(state_path, state)
        ready()
        _print_exports(config, state, operator_exports)
        await stop.wait()
    finally:
        inner.set()
        await asyncio.gather(*tasks, return_exceptions=True)
