"""How client commands find their services and credentials.

URLs: ``CVAULT_AUTHORITY_URL`` / ``CVAULT_STORE_URL`` (or the TOML file), else
the ones saved by ``cvault login`` / ``cvault dev``, else the defaults.
Credentials, each from the variable or from the file its ``_FILE`` variable
names: ``CVAULT_STORE_TOKEN``, ``CVAULT_AUTH_TOKEN`` (a service or permission
token); the login session from ``CVAULT_SESSION`` or the saved session.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vault.client import Client, Credentials
from vault.client.blocking_http import BlockingHTTP
from vault.config import load_config
from vault.errors import ConfigError

from .options import add_config_option
from .session_file import SessionFile

__all__ = [
    "ClientSettings",
    "add_client_options",
    "client_command",
    "client_settings",
    "default_vault",
    "make_client",
    "read_secret_variable",
]

DEFAULT_VAULT = "default"


def default_vault(env: Mapping[str, str] = os.environ) -> str:
    return env.get("CVAULT_VAULT", "").strip() or DEFAULT_VAULT


_MAX_TOKEN_FILE_BYTES = 1024 * 1024


def add_client_options(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    add_config_option(parser)
    parser.add_argument(
        "--ca-cert",
        metavar="FILE",
        help="PEM file of the CA that signed the services' TLS certificates (default: $CVAULT_CACERT, "
        "else the system trust store)",
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def read_secret_variable(env: Mapping[str, str], name: str) -> str | None:
    """``$NAME``, or the contents of the file ``$NAME_FILE`` names; both set is an error."""
    value = env.get(name, "").strip()
    path = env.get(f"{name}_FILE", "").strip()
    if value and path:
        raise ConfigError(f"set either {name} or {name}_FILE, not both")
    if value:
        return value
    if not path:
        return None
    try:
        with Path(path).expanduser().open("r", encoding="utf-8") as handle:
            text = handle.read(_MAX_TOKEN_FILE_BYTES + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}_FILE: cannot read {path}: {getattr(exc, 'strerror', None) or 'not text'}") from None
    if len(text) > _MAX_TOKEN_FILE_BYTES or not text.strip():
        raise ConfigError(f"{name}_FILE: {path} does not hold a token")
    return text.strip()


@dataclass(frozen=True)
class ClientSettings:
    authority_url: str
    store_url: str
    credentials: Credentials
    session_file: SessionFile
    session_from_file: bool = False
    ca_cert: str | None = None


def client_settings(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> ClientSettings:
    session_file = SessionFile()
    saved = session_file.load()
    config = load_config(env, getattr(args, "config", None))
    authority_url = config.authority_url
    store_url = config.store_url
    if not env.get("CVAULT_AUTHORITY_URL") and isinstance(saved.get("authority_url"), str):
        authority_url = saved["authority_url"]
    if not env.get("CVAULT_STORE_URL") and isinstance(saved.get("store_url"), str):
        store_url = saved["store_url"]
    session = env.get("CVAULT_SESSION", "").strip() or None
    from_file = False
    # A saved session only counts against the authority it was made for.
    if session is None and saved.get("authority_url") == authority_url and isinstance(saved.get("session"), str):
        session, from_file = saved["session"], True
    credentials = Credentials.from_text(
        store_token=read_secret_variable(env, "CVAULT_STORE_TOKEN"),
        authority_token=read_secret_variable(env, "CVAULT_AUTH_TOKEN"),
        session=session,
    )
    ca_cert = getattr(args, "ca_cert", None)
    return ClientSettings(authority_url, store_url, credentials, session_file, from_file, ca_cert)


def make_client(settings: ClientSettings, **kwargs: object) -> Client:
    # Permission tokens cached in the file belong to its session's user only.
    cache = settings.session_file if settings.session_from_file else None
    # A command sends a handful of requests one after another: the standard library's
    # http.client does that without aiohttp's import cost (bench/cli_start.py).
    kwargs.setdefault("http", BlockingHTTP(ca_cert=settings.ca_cert))
    return Client(
        store_url=settings.store_url,
        authority_url=settings.authority_url,
        credentials=settings.credentials,
        token_cache=cache,
        **kwargs,  # type: ignore[arg-type]
    )


ClientAction = Callable[[Client, argparse.Namespace], Awaitable[int]]


def client_command(action: ClientAction) -> Callable[[argparse.Namespace], int]:
    """A command's ``func``: build the client from the environment, run ``action``, close the client."""

    def func(args: argparse.Namespace) -> int:
        settings = client_settings(args)

        async def go() -> int:
            async with make_client(settings) as client:
                return await action(client, args)

        return asyncio.run(go())

    return func
