"""``cvault dev``: everything on one machine, with no PostgreSQL server installed.

Uses ``CVAULT_DATABASE_URL`` when set; otherwise starts an embedded PostgreSQL
(pgserver) in ``<data-dir>/pgdata``. Generates the master key once into
``<data-dir>/master.key`` (mode 0600), migrates, prints one readiness line, and
runs until SIGINT or SIGTERM. A second start reuses the data directory.

The services, the first owner, org and vault, and the printed exports are
:mod:`vault.cli.dev_services`'s job.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shlex
import signal
import socket
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from vault.config import Config, read_master_key_file, require_master_keys
from vault.crypto.keyring import generate_key
from vault.crypto.local_ca import LocalCA
from vault.errors import ConfigError
from vault.logs import configure_logging
from vault.storage.database import create_database, database_exists
from vault.storage.embedded import EmbeddedPostgres
from vault.storage.keys import load_keyring
from vault.storage.migrations import migrate
from vault.storage.pool import Pool, close_pool, create_pool
from vault.storage.schema import SCHEMAS

from .dev_services import dev_ca_file, run_dev_services
from .options import add_config_option, config_from_args

DATABASE_NAME = "cvault"


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "dev", help="run a local development setup (embedded PostgreSQL unless CVAULT_DATABASE_URL is set)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the database and master key live (default: $CVAULT_DATA_DIR or the user data directory)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve both services over TLS with a certificate from a local CA made in the data directory "
        "(prints CVAULT_CACERT for clients)",
    )
    parser.add_argument(
        "--authority-listen", metavar="HOST:PORT", help="the authority's address (default: $CVAULT_AUTHORITY_LISTEN)"
    )
    parser.add_argument(
        "--store-listen", metavar="HOST:PORT", help="the store's address (default: $CVAULT_STORE_LISTEN)"
    )
    add_config_option(parser)
    parser.set_defaults(func=run)


def check_ports_free(config: Config) -> None:
    """Refuse to start when a port is taken, naming the setting that moves it.

    Checked before anything starts: otherwise another program answering on the
    port (often a ``cvault dev`` started earlier) would look like our service.
    """
    for service, listen, variable, flag in (
        ("authority", config.authority_listen, "CVAULT_AUTHORITY_LISTEN", "--authority-listen"),
        ("store", config.store_listen, "CVAULT_STORE_LISTEN", "--store-listen"),
    ):
        host, _, port = listen.rpartition(":")
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host.strip("[]"), int(port)))
            except OSError as exc:
                raise ConfigError(
                    f"the {service} cannot listen on {listen}: {exc.strerror or exc} (another cvault dev?); "
                    f"choose another address with {flag} HOST:PORT or {variable}"
                ) from None


def run(args: argparse.Namespace) -> int:
    listen = {
        key: value
        for key, value in (("authority_listen", args.authority_listen), ("store_listen", args.store_listen))
        if value
    }
    config = absolute_paths(config_from_args(args, dev=True, data_dir=args.data_dir, **listen))
    check_ports_free(config)
    # Logs (the access log included) go to stderr; stdout is for the lines a user copies.
    configure_logging(config.log_level, config.log_format)
    if args.tls:
        config = dev_tls(config)
    return asyncio.run(serve_dev(config))


def absolute_paths(config: Config) -> Config:
    """``config`` with its data directory and key file absolute: the exports it prints work after a ``cd``."""
    key_file = config.master_key_file
    return replace(
        config,
        data_dir=config.data_dir.expanduser().absolute(),
        master_key_file=None if key_file is None else key_file.expanduser().absolute(),
    )


def dev_tls(config: Config) -> Config:
    """``config`` serving TLS with a certificate for this machine from the data directory's local CA."""
    directory = dev_ca_file(config.data_dir).parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_cert, ca_key = directory / "ca.pem", directory / "ca-key.pem"
    if ca_cert.exists() and ca_key.exists():
        ca = LocalCA.load(ca_cert, ca_key)
    else:
        ca = LocalCA.create("cvault dev local CA")
        ca.save(ca_cert, ca_key)
    hosts = sorted({"localhost", "127.0.0.1", "::1"} | {config.authority_listen.rpartition(":")[0].strip("[]")})
    issued = ca.issue(directory, "server", hosts)
    return replace(config, tls_cert_file=issued.cert_file, tls_key_file=issued.key_file)


def _say(line: str) -> None:
    print(f"cvault dev: {line}", flush=True)


def load_or_create_master_key(path: Path) -> tuple[bytes, bool]:
    """The dev master key in ``path``, created (mode 0600) if absent; returns ``(key, created)``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"master key file {path} is accessible by other users; run `chmod 600 {path}`") from None
        return read_master_key_file(path, key=str(path)), False
    key = generate_key()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(key).decode("ascii") + "\n")
    return key, True


async def run_services(
    config: Config, pool: Pool, stop: asyncio.Event, ready: Callable[[], None], operator_exports: Sequence[str] = ()
) -> None:
    """Run both services on ``pool`` until ``stop`` is set; call ``ready`` once they answer and are set up."""
    await run_dev_services(config, pool, stop, _say, ready, operator_exports)


def operator_exports(config: Config, embedded: bool) -> list[str]:
    """What the operator commands (``cvault keys rotate``, ``cvault audit verify``) need in the shell."""
    lines = []
    if config.master_key_file is not None:
        lines.append(f"export CVAULT_MASTER_KEY_FILE={shlex.quote(str(config.master_key_file))}")
    if embedded and config.database_url is not None:
        # The embedded server has no password, so its DSN is safe to print.
        lines.append(f"export CVAULT_DATABASE_URL={shlex.quote(config.database_url)}")
    elif config.database_url is not None:
        lines.append("# operator commands (cvault keys rotate) also need CVAULT_DATABASE_URL, as set for cvault dev")
    return lines


async def serve_dev(config: Config) -> int:
    started = time.monotonic()
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    if config.master_key is None and config.master_key_command is None:
        key_path = config.data_dir / "master.key"
        key, created = load_or_create_master_key(key_path)
        config = replace(config, master_key=key, master_key_file=key_path)
        _say(f"{'created' if created else 'using'} master key {key_path}")
    master_key = require_master_keys(config)

    embedded: EmbeddedPostgres | None = None
    if config.database_url is None:
        embedded = await asyncio.to_thread(EmbeddedPostgres.start, config.data_dir / "pgdata")
        if not await database_exists(embedded.dsn(), DATABASE_NAME):
            await create_database(embedded.dsn(), DATABASE_NAME)
        # The embedded server has no password, so its DSN is safe to show.
        config = replace(config, database_url=embedded.dsn(DATABASE_NAME))
        _say(f"embedded PostgreSQL in {embedded.pgdata}: CVAULT_DATABASE_URL='{config.database_url}'")
    assert config.database_url is not None

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    pool: Pool | None = None
    try:
        pool = await create_pool(config.database_url, max_size=config.database_pool_size)
        applied = await migrate(pool, sql_dir=config.sql_dir)
        for schema in SCHEMAS:
            # Opens (or on first start creates) each schema's KEK, proving the master key fits.
            await load_keyring(pool, schema, master_key)
        _say(f"{len(applied)} migration(s) applied")

        def ready() -> None:
            _say(f"ready in {time.monotonic() - started:.2f} s; press Ctrl-C to stop")

        await run_services(config, pool, stop, ready, operator_exports(config, embedded is not None))
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if pool is not None:
            await close_pool(pool)
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
    _say("stopped")
    return 0
