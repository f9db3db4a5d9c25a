"""``cvault serve authority`` and ``cvault serve store``: run one service in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Callable
from typing import Any

from vault.config import Config, require_master_key
from vault.logs import configure_logging
from vault.web.authority import create_authority_app
from vault.web.runner import serve_app
from vault.web.store import create_store_app

from .options import add_config_option, config_from_args
from .workers import run_workers

__all__ = ["register", "run_until_signal"]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("serve", help="run one cvault service")
    services = parser.add_subparsers(dest="service", metavar="SERVICE")
    services.required = True

    authority = services.add_parser("authority", help="the token authority (logins, tokens, dischargers)")
    add_config_option(authority)
    _add_workers_option(authority)
    authority.set_defaults(func=run_authority)

    store = services.add_parser("store", help="the secret store (needs CVAULT_AUTHORITY_ORG_PUBLIC_KEY)")
    add_config_option(store)
    _add_workers_option(store)
    store.set_defaults(func=run_store)


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of processes from 1 to 64")
    return count


def _add_workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="serve with N processes sharing the port (SO_REUSEPORT; about one per core; default 1)",
    )


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

    def serve(name: str, reuse_port: bool) -> int:
        async def main(stop: asyncio.Event) -> None:
            # serve_app logs "listening" once the keys are open and the port is bound.
            app = create_authority_app(config)
            await serve_app(
                app, config.authority_listen, stop, config, name=name, url=config.authority_url, reuse_port=reuse_port
            )

        asyncio.run(run_until_signal(main))
        return 0

    return _serve(args.workers, "authority", serve)


def run_store(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    _configure_logging(config)
    require_master_key(config)  # as for the authority
    create_store_app(config)  # refuses to start without the authority's org public key (before any fork)

    def serve(name: str, reuse_port: bool) -> int:
        app = create_store_app(config)

        async def main(stop: asyncio.Event) -> None:
            await serve_app(
                app, config.store_listen, stop, config, name=name, url=config.store_url, reuse_port=reuse_port
            )

        asyncio.run(run_until_signal(main))
        return 0

    return _serve(args.workers, "store", serve)


def _serve(workers: int, service: str, serve: Callable[[str, bool], int]) -> int:
    """``serve(name, reuse_port)`` in this process, or in ``workers`` forked children sharing the port."""
    if workers == 1:
        return serve(service, False)

    def child(index: int, count: int) -> int:
        return serve(f"{service} worker {index + 1}/{count} (pid {os.getpid()})", True)

    return run_workers(workers, child, name=service)
