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

from .client_options import add_client_options, client_settings
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

    rotator = services.add_parser(
        "rotator",
        help="the rotator: rotates the secrets with a rotation policy (docs/rotation.md)",
        description="Claims due rotations from the store and drives each through create, set, test and promote. "
        "It holds only a store token for rotation (`cvault rotation token`) in CVAULT_STORE_TOKEN and a service "
        "token for its discharges in CVAULT_AUTH_TOKEN, as any workload.",
    )
    rotator.add_argument("--vault", action="append", required=True, help="a vault to rotate in (repeatable)")
    rotator.add_argument("--interval", type=float, default=5.0, metavar="S", help="seconds between polls (5)")
    rotator.add_argument("--lease", type=int, default=60, metavar="S", help="lease of each claimed rotation (60)")
    rotator.add_argument("--batch", type=_bounded(1, 100), default=10, metavar="N", help="claimed per poll (10)")
    rotator.add_argument("--concurrency", type=_bounded(1, 64), default=8, metavar="N", help="rotations at once (8)")
    rotator.add_argument("--timeout", type=float, default=10.0, metavar="S", help="bound of each target step (10)")
    rotator.add_argument(
        "--hook",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="the command hook NAME runs the executable at PATH, an absolute path (repeatable)",
    )
    rotator.add_argument("--holder", help="this rotator's name in leases and the audit log (default: host:pid)")
    rotator.add_argument("--pause-after", help=argparse.SUPPRESS)  # tests: stop after this step...
    rotator.add_argument("--pause-file", help=argparse.SUPPRESS)  # ...and say so in this file
    add_client_options(rotator, json_flag=False)
    rotator.set_defaults(func=run_rotator)


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of processes from 1 to 64")
    return count


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: give a whole number from {low} to {high}")
        return value

    return parse


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


def run_rotator(args: argparse.Namespace) -> int:
    import secrets as random_names
    import socket
    from pathlib import Path

    from vault.client import Client

    from .rotator import Rotator, RotatorSettings

    configure_logging("INFO", "text")
    hooks: dict[str, Path] = {}
    for item in args.hook:
        name, sep, path = item.partition("=")
        if not sep or not name or not path or not Path(path).is_absolute():
            raise SystemExit(f"cvault: --hook {item!r}: give NAME=PATH, PATH the executable's absolute path")
        hooks[name] = Path(path)
    holder = args.holder or f"{socket.gethostname()}:{os.getpid()}:{random_names.token_hex(3)}"
    if args.lease < args.timeout + 2:
        raise SystemExit(f"cvault: --lease {args.lease} must exceed --timeout {args.timeout:g} by 2 s at least")
    settings = RotatorSettings(
        vaults=tuple(args.vault),
        holder=holder,
        interval=args.interval,
        lease_seconds=args.lease,
        batch=args.batch,
        concurrency=args.concurrency,
        timeout=args.timeout,
        hooks=hooks,
        pause_after=args.pause_after,
        pause_file=Path(args.pause_file) if args.pause_file else None,
    )
    client_args = client_settings(args).client_arguments()

    async def main(stop: asyncio.Event) -> None:
        async with Client(**client_args) as client:
            rotator = Rotator(client, settings)
            try:
                await rotator.run(stop)
            finally:
                await rotator.close()

    asyncio.run(run_until_signal(main))
    return 0
