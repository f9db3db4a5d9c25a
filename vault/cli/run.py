"""``cvault run -- CMD``: fetch a vault's secrets in one batch read, put them in the environment, exec.

Secrets reach the command through its environment (``os.execvpe``), and through
a file only when ``--env-file`` or ``--mount`` asks; never an argument (so never
the process list), never stdout. Names map
to variables as ``db/url`` -> ``DB_URL`` (after removing ``--prefix``); a mapping
file overrides that (``db/url=DATABASE_URL`` lines, or a JSON object).

``--watch`` keeps cvault as the command's parent and restarts it (or signals
it) when a secret gets a new current version; ``--env-file`` / ``--mount``
also write the secrets to a mode-0600 file removed on exit
(:mod:`vault.cli.run_watch`). Plain ``cvault run`` execs and is gone.

``--fallback FILE`` names an encrypted cache, written only with
``--write-fallback`` after a successful read; when the store or the authority
cannot be reached (after the client's retries) the cache is used instead, and
stderr says so. A refusal (revoked token, missing permission) never falls back.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vault.client.blocking_http import run_blocking
from vault.errors import BadRequest, ConfigError, NotFound, Unavailable

from .client_options import ClientSettings, add_client_options, client_settings, default_vault, make_client
from .output import replace_private

if TYPE_CHECKING:
    from vault.client import Client

    from .run_watch import WatchOptions

# Imported where used: plain `cvault run` (read, exec) needs neither the watcher with its
# event loop and aiohttp, nor the fallback cache's AES-GCM (bench/cli_start.py).

__all__ = ["env_name", "register"]

_CREDENTIAL_VARIABLES = (
    "CVAULT_STORE_TOKEN",
    "CVAULT_STORE_TOKEN_FILE",
    "CVAULT_AUTH_TOKEN",
    "CVAULT_AUTH_TOKEN_FILE",
    "CVAULT_SESSION",
    "CVAULT_OIDC_TOKEN",
    "CVAULT_OIDC_TOKEN_FILE",
    "CVAULT_WORKLOAD_ROLE",
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_MAP_BYTES = 1024 * 1024
_MAX_FALLBACK_BYTES = 64 * 1024 * 1024


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="run a command with a vault's secrets in its environment",
        description=(
            "Fetch the vault's secrets in one batch read, set them as environment variables (db/url -> DB_URL) "
            "and exec CMD. Credentials: CVAULT_STORE_TOKEN and CVAULT_AUTH_TOKEN (or their _FILE variants)."
        ),
    )
    parser.add_argument("--vault", default=None, help="the vault (default: $CVAULT_VAULT or 'default')")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated secret names to fetch (all must exist)")
    parser.add_argument("--prefix", metavar="P", help="fetch only secrets under this prefix (removed from names)")
    parser.add_argument("--map", dest="map_file", type=Path, metavar="FILE", help="name=VARIABLE lines or JSON")
    parser.add_argument("--fallback", type=Path, metavar="FILE", help="encrypted cache used if the store is down")
    parser.add_argument("--write-fallback", action="store_true", help="(re)write the --fallback cache after a read")
    parser.add_argument(
        "--keep-credentials", action="store_true", help="pass CVAULT_* credentials on to the command (default: removed)"
    )
    parser.add_argument(
        "--watch", action="store_true", help="restart CMD (or --signal it) when a secret gets a new current version"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="with --watch: how often to check for new versions (1-3600, default 30)",
    )
    parser.add_argument(
        "--signal", metavar="SIG", help="with --watch: send this signal (e.g. HUP) instead of restarting"
    )
    parser.add_argument(
        "--env-file", type=Path, metavar="FILE", help='also write NAME="value" lines here (mode 0600, removed on exit)'
    )
    parser.add_argument(
        "--mount", type=Path, metavar="FILE", help="also write a JSON object name -> value here (0600, removed on exit)"
    )
    add_client_options(parser, json_flag=False)
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...")
    parser.set_defaults(func=run)


def env_name(name: str, prefix: str | None = None) -> str:
    """``db/url`` -> ``DB_URL``; the prefix, when given, is removed first."""
    if prefix and name.startswith(prefix):
        name = name[len(prefix) :].lstrip("/")
    text = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
    if not text or text[0].isdigit():
        text = "_" + text
    return text


def _read_map(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")[: _MAX_MAP_BYTES + 1]
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"cannot read the mapping file {path}") from None
    if len(text) > _MAX_MAP_BYTES:
        raise ConfigError(f"the mapping file {path} is too large")
    mapping: dict[str, str] = {}
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError(f"the mapping file {path} is not valid JSON") from None
        items = [(k, v) for k, v in data.items()] if isinstance(data, dict) else []
    else:
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, var = line.partition("=")
            if not sep:
                raise ConfigError(f"{path}:{n}: expected secret/name=VARIABLE")
            items.append((name.strip(), var.strip()))
    for name, var in items:
        if not isinstance(var, str) or not _ENV_NAME.fullmatch(var):
            raise ConfigError(f"{path}: {var!r} (for {name!r}) is not an environment variable name")
        mapping[str(name)] = var
    return mapping


def environment_for(secrets: Mapping[str, str], prefix: str | None, mapping: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    source: dict[str, str] = {}
    for name in sorted(secrets):
        var = mapping.get(name) or env_name(name, prefix)
        if var in source:
            raise BadRequest(
                f"secrets {source[var]!r} and {name!r} both map to ${var}; give one of them a name in a --map file"
            )
        source[var] = name
        out[var] = secrets[name]
    return out


def _context(vault: str, args: argparse.Namespace) -> str:
    # Not the store URL: a workload may reach the same store under another name.
    return json.dumps({"vault": vault, "only": args.only or "", "prefix": args.prefix or ""}, sort_keys=True)


def _key_material(settings: ClientSettings) -> bytes:
    creds = settings.credentials
    parts = [t.token.encode() for t in (creds.store_token, creds.authority_token) if t is not None]
    if not parts:
        # A workload that holds nothing on disk has nothing stable to derive the file's key from.
        raise ConfigError("--fallback needs a stored credential (CVAULT_STORE_TOKEN or CVAULT_AUTH_TOKEN) for its key")
    return b"\x00".join(parts)


def _write_fallback(path: Path, settings: ClientSettings, context: str, secrets: Mapping[str, str]) -> None:
    from vault.crypto.fallback_cache import seal_fallback

    plaintext = json.dumps({"written_at": int(time.time()), "secrets": dict(secrets)}).encode()
    sealed = seal_fallback(_key_material(settings), plaintext, context)
    replace_private(path, sealed, what="the fallback file")


def _read_fallback(path: Path, settings: ClientSettings, context: str) -> tuple[dict[str, str], int]:
    try:
        with path.open("rb") as handle:
            sealed = handle.read(_MAX_FALLBACK_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the fallback file {path}: {exc.strerror}") from None
    from vault.crypto.fallback_cache import open_fallback

    data = json.loads(open_fallback(_key_material(settings), sealed, context))
    return dict(data["secrets"]), int(data["written_at"])


async def _batch(
    client: Client, vault: str, names: Sequence[str] | None, prefix: str | None
) -> tuple[dict[str, str], dict[str, int]]:
    """One batch read: the secrets' values and their current versions."""
    await client.ensure_store_token()  # a workload with no store token logs in for one (docs/workload-identity.md)
    read = await client.store.batch_read(vault, names=names, prefix=prefix)
    if read.missing:
        raise NotFound(f"secret(s) not found in vault {vault!r}: {', '.join(read.missing)}; nothing was started")
    return read.values(), read.versions()


async def _fetch(
    settings: ClientSettings, vault: str, names: Sequence[str] | None, prefix: str | None
) -> tuple[dict[str, str], dict[str, int]]:
    async with make_client(settings) as client:
        return await _batch(client, vault, names, prefix)


def _watch_signal(args: argparse.Namespace) -> signal.Signals | None:
    """``--signal`` as a signal, after checking it and ``--interval`` (usage errors, before any request)."""
    if not 1.0 <= args.interval <= 3600.0:
        raise BadRequest("--interval takes 1 to 3600 seconds")
    if args.signal is None:
        return None
    if not args.watch:
        raise BadRequest("--signal goes with --watch")
    name = args.signal.upper()
    try:
        return signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]
    except KeyError:
        raise BadRequest(f"--signal: {args.signal!r} is not a signal name (e.g. HUP, USR1)") from None


def _watch_options(args: argparse.Namespace) -> WatchOptions:
    from .run_watch import WatchOptions

    return WatchOptions(args.watch, args.interval, _watch_signal(args), args.env_file, args.mount)


async def _supervise(
    args: argparse.Namespace,
    settings: ClientSettings,
    vault: str,
    names: Sequence[str] | None,
    command: list[str],
    variables: Callable[[Mapping[str, str]], dict[str, str]],
    base: Mapping[str, str],
    first: dict[str, str],
    versions: dict[str, int],
) -> int:
    from vault.client.http import HTTP

    from .run_watch import Supervisor

    options = _watch_options(args)
    # A watcher lives long and waits on the child meanwhile: aiohttp, not the blocking transport.
    transport = {"http": HTTP(ca_cert=settings.ca_cert)} if options.watch else {}
    async with make_client(settings, **transport) as client:

        async def poll() -> dict[str, int]:
            return dict((await client.store.current_versions(vault, names=names, prefix=args.prefix)).versions)

        fetch = lambda: _batch(client, vault, names, args.prefix)  # noqa: E731
        supervisor = Supervisor(command, options, fetch, variables, base, poll)
        return await supervisor.run(first, versions)


def run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise BadRequest("no command given: cvault run [options] -- CMD ARGS...")
    if args.write_fallback and args.fallback is None:
        raise BadRequest("--write-fallback needs --fallback FILE")
    settings = client_settings(args)
    vault = args.vault or default_vault()
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    mapping = _read_map(args.map_file) if args.map_file else {}
    context = _context(vault, args)
    _watch_signal(args)  # usage errors before any request
    versions: dict[str, int] = {}  # unknown when the secrets come from the fallback cache
    try:
        secrets, versions = run_blocking(_fetch(settings, vault, names, args.prefix))
    except Unavailable as exc:
        if args.fallback is None or not args.fallback.exists():
            raise
        secrets, written_at = _read_fallback(args.fallback, settings, context)
        age = int(time.time()) - written_at
        print(
            f"cvault run: the secret store is unreachable ({exc.message}); "
            f"using the fallback cache {args.fallback} written {age} s ago",
            file=sys.stderr,
        )
    else:
        if args.write_fallback:
            _write_fallback(args.fallback, settings, context, secrets)
    base = dict(os.environ)
    if not args.keep_credentials:
        for name in _CREDENTIAL_VARIABLES:
            base.pop(name, None)

    def variables(values: Mapping[str, str]) -> dict[str, str]:
        return environment_for(values, args.prefix, mapping)

    env = {**base, **variables(secrets)}
    if args.watch or args.env_file or args.mount:
        import asyncio

        status = asyncio.run(_supervise(args, settings, vault, names, command, variables, base, secrets, versions))
        # A command killed by a signal: report it the way a shell does (128 + the signal).
        return 128 - status if status < 0 else status
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)  # noqa: S606 - exec without a shell is the point
    except OSError as exc:
        print(f"cvault run: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # pragma: no cover - exec does not return
