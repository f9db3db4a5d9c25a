"""The client commands' shared options and how they build their client.

Where the services and credentials come from is :mod:`vault.client.environment`'s
job (the same reader :meth:`vault.client.Client.from_env` uses).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable, Mapping

from vault.client import Client
from vault.client.environment import ClientSettings, load_settings, read_secret_variable

from .options import add_config_option

__all__ = [
    "ClientSettings",
    "add_client_options",
    "client_command",
    "client_settings",
    "default_vault",
    "make_client",
    "read_secret_variable",
    "runs_with_client",
]

DEFAULT_VAULT = "default"


def default_vault(env: Mapping[str, str] = os.environ) -> str:
    return env.get("CVAULT_VAULT", "").strip() or DEFAULT_VAULT


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


def client_settings(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> ClientSettings:
    return load_settings(env, getattr(args, "config", None), ca_cert=getattr(args, "ca_cert", None))


def make_client(settings: ClientSettings, **kwargs: object) -> Client:
    # A command sends a handful of requests one after another: a blocking socket does that
    # without aiohttp's import cost (bench/cli_start.py). Imported here, not above: an
    # offline command (`tokens debug`) needs no HTTP at all.
    from vault.client.blocking_http import BlockingHTTP

    kwargs.setdefault("http", BlockingHTTP(ca_cert=settings.ca_cert))
    return Client(**{**settings.client_arguments(), **kwargs})


ClientAction = Callable[[Client, argparse.Namespace], Awaitable[int]]


def client_command(action: ClientAction) -> Callable[[argparse.Namespace], int]:
    """A command's ``func``: build the client from the environment, run ``action``, close the client."""

    def func(args: argparse.Namespace) -> int:
        settings = client_settings(args)

        async def go() -> int:
            async with make_client(settings) as client:
                return await action(client, args)

        from vault.client.blocking_http import run_blocking

        # The blocking transport never suspends: no event loop, and no asyncio import.
        return run_blocking(go())

    return func


def runs_with_client(parser: argparse.ArgumentParser, action: ClientAction) -> None:
    """Make ``parser``'s command run ``action`` with a client, set up by the options :func:`add_client_options` adds."""
    add_client_options(parser)
    parser.set_defaults(func=client_command(action))
