"""``cvault serve authority`` and ``cvault serve store``: run one service in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from vault.config import Config, require_master_key
from vault.logs import configure_logging
from vault.web.authority import create_authority_app
from vault.web.runner import serve_app
from vault.web.store import create_store_app

from .options import add_config_option, config_from_args

__all__ = ["register", "run_until_signal"]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("serve", help="run one cvault service")
    services = parser.add_subparsers(dest="service", metavar="SERVICE")
    services.required = True

    authority = services.add_parser("authority", help="the token authority (logins, tokens, dischargers)")
    add_config_option(authority)
    authority.set_defaults(func=run_authority)

    store = services.add_parser("store", help="the secret store (needs CVAULT_AUTHORITY_ORG_PUBLIC_KEY)")
    add_config_option(store)
    store.set_defaults(func=run_store)


def _configure_logging(config: Config) -> None:
    configure_logging(config.log_level, config.log_format)


async def run_until_signal(main: Any) -> None:
    """Run ``main(stop)`` until SIGINT or SIGTERM sets ``stop``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await main(stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def run_authority(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    _configure_logging(config)
    require_master_key(config)  # runs master_key_command (once) before anything listens; fails with a clear error

    async def main(stop: asyncio.Event) -> None:
        # serve_app logs "listening" once the keys are open and the port is bound.
        app = create_authority_app(config)
        await serve_app(app, config.authority_listen, stop, config, name="authority", url=config.authority_url)

    asyncio.run(run_until_signal(main))
    return 0


def run_store(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    _configure_logging(config)
    require_master_key(config)  # as for the authority
    app = create_store_app(config)  # refuses to start without the authority's org public key

    async def main(stop: asyncio.Event) -> None:
        await serve_app(app, config.store_listen, stop, config, name="store", url=config.store_url)

    asyncio.run(run_until_signal(main))
    return 0
