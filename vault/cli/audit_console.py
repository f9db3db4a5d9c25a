"""``cvault audit console``: the audit log in a browser, served from this machine with the reviewer's credentials.

The credentials are read as ``cvault audit query`` reads them (``CVAULT_STORE_TOKEN``
with ``a``, and ``CVAULT_AUTH_TOKEN`` or the login session) and stay in this
process; the browser only ever sees pages. The chain status page asks the store to
verify its log; with ``CVAULT_DATABASE_URL`` set, the console recomputes the chains
on the database itself.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import sys
from typing import Any

from vault.config import load_config
from vault.errors import ConfigError

from .client_options import add_client_options, client_settings, make_client

__all__ = ["DEFAULT_LISTEN", "parse_listen", "register"]

DEFAULT_LISTEN = "127.0.0.1:8300"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8300`` for IPv6); the host must be an IP address."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not 0 <= number <= 65535:
        raise ConfigError(f"--listen {text!r}: use an IP address and a port, like {DEFAULT_LISTEN} or [::1]:8300")
    return host, number


def register(audit_sub: Any) -> None:
    p: argparse.ArgumentParser = audit_sub.add_parser(
        "console",
        help="browse the store's audit log in a local web console (timeline, secrets, token lineage, chain)",
        description=(
            "Serves a read-only web console on this machine. Needs CVAULT_STORE_TOKEN with 'a' (audit) and an "
            "authority credential, as `cvault audit query` does; they never reach the browser. The store "
            "verifies the hash chains for it; with CVAULT_DATABASE_URL set, the console recomputes them itself."
        ),
    )
    p.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"where to listen (default {DEFAULT_LISTEN}; anything but loopback shows the log to the network)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer to this host name (e.g. behind an SSH tunnel); IP addresses need no flag",
    )
    add_client_options(p, json_flag=False)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen)
    settings = client_settings(args)
    database_url = load_config(toml_path=getattr(args, "config", None)).database_url
    if not ipaddress.ip_address(host).is_loopback:
        print(
            f"cvault audit console: WARNING: listening on {host}, not loopback: anyone who can reach it reads "
            "the audit log with your credentials",
            file=sys.stderr,
        )

    async def go() -> int:
        # Imported here: the web stack is only needed by this command.
        from vault.client.http import HTTP
        from vault.web.console import create_console_app, serve_console
        from vault.web.console.reviewer import Reviewer

        # The aiohttp transport: the console serves pages while its queries wait (the CLI's
        # default, BlockingHTTP, would stall the server during every request to the store).
        async with make_client(settings, http=HTTP()) as client:
            await Reviewer(client).check_access()
            app = create_console_app(client, database_url=database_url, allow_hosts=args.allow_host)
            stop = asyncio.Event()
            # SIGTERM (a service manager, a test) stops it as Ctrl-C does: the pool and client close cleanly.
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await serve_console(
                app,
                host,
                port,
                started=lambda url: print(f"cvault audit console: open {url}", flush=True),
                stop=stop,
            )
        return 0

    return asyncio.run(go())
