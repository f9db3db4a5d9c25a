"""The one place that reads cvault's configuration.

Sources, later ones winning: built-in defaults, an optional TOML file
(``--config`` or ``CVAULT_CONFIG``), ``CVAULT_*`` environment variables, and
explicit overrides from the command line. The result is a frozen
:class:`Config` that callers pass down explicitly; nothing else reads the
environment.

Every setting has the same name in both places: TOML key ``session_ttl`` is
variable ``CVAULT_SESSION_TTL``. Unknown keys and bad values raise
:class:`~vault.errors.ConfigError` naming the key, so a typo fails at start
instead of silently falling back to a default. The master key itself is only
accepted from the environment (``CVAULT_MASTER_KEY``) or a key file, never inline
in a TOML file that tends to get committed or copied around.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import platformdirs

import vault
from vault.authorization import FEED_TOKEN
from vault.errors import ConfigError

if TYPE_CHECKING:
    from vault.crypto.keyring import MasterKeys

# The key ring (and with it `cryptography`), tomllib and subprocess are imported where used:
# every `cvault` client command reads its settings here and needs none of them.

__all__ = [
    "CLIENT_VARIABLES",
    "TOOL_PREFIX",
    "ClientConfig",
    "Config",
    "default_sql_dir",
    "is_loopback_host",
    "load_client_config",
    "load_config",
    "previous_master_keys",
    "read_master_key_file",
    "require_database_url",
    "require_master_key",
    "require_master_keys",
]

PREFIX = "CVAULT_"
MASTER_KEY_SIZE = 32

# Variables that share the prefix but belong to the client (vault/client/environment.py reads them);
# the server ignores them rather than calling them typos.
CLIENT_VARIABLES = frozenset(
    {
        "CVAULT_AUTH_TOKEN",
        "CVAULT_AUTH_TOKEN_FILE",
        "CVAULT_CACERT",
        "CVAULT_CLIENT_CERT",
        "CVAULT_CLIENT_KEY",
        "CVAULT_CONFIG",
        "CVAULT_OIDC_AUDIENCE",
        "CVAULT_OIDC_TOKEN",
        "CVAULT_OIDC_TOKEN_FILE",
        "CVAULT_SESSION",
        "CVAULT_STORE_TOKEN",
        "CVAULT_STORE_TOKEN_FILE",
        "CVAULT_TOKEN",
        "CVAULT_VAULT",
        "CVAULT_WORKLOAD_ROLE",
    }
)

# A prefix no setting takes, reserved for the tools around cvault (the test suite names its variables
# CVAULT_TEST_*, tests/operations/test_config_doc.py lists them): the servers ignore such variables.
TOOL_PREFIX = "CVAULT_TEST_"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def default_sql_dir() -> Path:
    """The migrations shipped with the code (the project is installed editable)."""
    return Path(vault.__file__).resolve().parent.parent / "sql"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("cvault"))


DEFAULT_AUTHORITY_URL = "http://127.0.0.1:8201"
DEFAULT_STORE_URL = "http://127.0.0.1:8202"


@dataclass(frozen=True)
class ClientConfig:
    """What a client reads of the configuration: where the services are. Build it with :func:`load_client_config`."""

    authority_url: str = DEFAULT_AUTHORITY_URL
    store_url: str = DEFAULT_STORE_URL


@dataclass(frozen=True)
class Config:
    """Typed settings of a service process (and of the CLI's server commands). Build it with :func:`load_config`."""

    # The DSN may carry a password, so it stays out of reprs like the key does.
    database_url: str | None = field(default=None, repr=False)
    master_key: bytes | None = field(default=None, repr=False)
    master_key_file: Path | None = None
    # A command whose standard output is the master key (base64), e.g. ``age -d key.age``;
    # run once, when a service first needs the key (see require_master_key).
    master_key_command: tuple[str, ...] | None = None
    master_key_command_timeout: int = 30
    # The master key being rotated away from, accepted alongside master_key during a
    # transition window (docs/keys.md); environment or file only, like master_key.
    master_key_previous: bytes | None = field(default=None, repr=False)
    master_key_previous_file: Path | None = None
    # `cvault keys status` warns about keys older than this many seconds (default 365 days).
    key_max_age: int = 365 * 24 * 3600
    dev: bool = False
    data_dir: Path = field(default_factory=default_data_dir)
    authority_listen: str = "127.0.0.1:8201"
    store_listen: str = "127.0.0.1:8202"
    authority_url: str = DEFAULT_AUTHORITY_URL
    store_url: str = DEFAULT_STORE_URL
    # The authority's org discharger public key (base64 of 32 bytes), as served at
    # <authority_url>/.well-known/cvault/keys; the store seals its tickets to it.
    authority_org_public_key: bytes | None = None
    # The store learns the authority's later org keys from <authority_url>/.well-known/cvault/keys
    # (or authority_keys_url), every authority_keys_interval seconds, taking a list only if a
    # key it already trusts endorses it (docs/keys.md).
    authority_keys_url: str | None = None
    authority_keys_interval: float = 30.0
    # Seconds between reloads of every node's keys when no notification arrives (the
    # LISTEN on <schema>_keys delivers changes at once; this is the fallback).
    key_watch_interval: float = 5.0
    login_discharge_ttl: int = 600
    org_discharge_ttl: int = 300
    session_ttl: int = 12 * 3600
    trusted_proxies: tuple[str, ...] = ()
    log_level: str = "INFO"
    # "text" or "json" (one object per line; vault.logs).
    log_format: str = "text"
    sql_dir: Path = field(default_factory=default_sql_dir)
    database_pool_size: int = 10
    # Seconds one database wait may take: opening a connection, taking one from the pool,
    # one statement, an audit batch. A request whose wait hits it answers 503 unavailable,
    # so a frozen database costs callers seconds, not minutes (docs/store.md, "Faults").
    database_timeout: float = 3.0
    # Seconds /readyz waits for its probe statement before it answers "not ready".
    readiness_timeout: float = 2.0
    # Connections (docs/operations.md): an idle connection is closed after
    # keepalive_timeout, a new one that has not sent its first request's headers
    # after header_read_timeout; beyond the caps a connection is answered 503 and closed.
    keepalive_timeout: int = 30
    header_read_timeout: int = 10
    max_connections: int = 768
    max_connections_per_client: int = 128
    # At most one "cannot accept" line (too many open files) per this many seconds.
    accept_error_log_interval: int = 10
    # TLS (docs/operations.md): both files, or neither; a client CA turns on mutual TLS.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    # Plain HTTP on a non-loopback address only with this (e.g. behind a TLS-terminating proxy).
    listen_insecure: bool = False
    # Prometheus metrics (docs/operations.md): on a separate address, and/or on the
    # service's port behind this bearer token. Neither set: no metrics at all.
    metrics_listen: str | None = None
    metrics_token: str | None = field(default=None, repr=False)
    # The revocation feed (docs/revocation.md). The store follows the authority's feed with
    # revocation_feed_token; the authority accepts tokens whose SHA-256 (hex) is listed in
    # revocation_feed_token_sha256. Past revocation_feed_max_lag seconds without a reply the
    # store refuses org discharges older than that. revocation_feed = false (benchmarks of a
    # store with no authority) turns the follower off, and with it the guarantee.
    revocation_feed: bool = True
    revocation_feed_token: str | None = field(default=None, repr=False)
    revocation_feed_token_sha256: tuple[str, ...] = ()
    revocation_feed_max_lag: int = 30
    # Where the store reads the feed (default <authority_url>/v1/revocations/feed, when the
    # public URL is not reachable from the store), and the CA file it trusts for that
    # connection's TLS (default: the system's CAs).
    revocation_feed_url: str | None = None
    revocation_feed_ca_file: Path | None = None
    # Seconds the store remembers a write's Idempotency-Key and its first outcome.
    idempotency_key_ttl: int = 24 * 3600
    # Workload identity (docs/workload-identity.md): the authority accepts a workload's JWT
    # valid for at most workload_jwt_max_lifetime seconds (exp - iat), with
    # workload_jwt_leeway seconds of clock skew, for at most workload_jwt_max_uses discharges.
    # Issuers' key sets are fetched over TLS (trusting workload_jwks_ca_file when set, else the
    # system's CAs), used for workload_jwks_max_age seconds, and fetched again for an unknown
    # kid at most every workload_jwks_refetch_interval seconds per issuer.
    workload_jwt_max_lifetime: int = 3600
    workload_jwt_leeway: int = 60
    workload_jwt_max_uses: int = 16
    workload_jwks_ca_file: Path | None = None
    workload_jwks_max_age: int = 300
    workload_jwks_refetch_interval: int = 30
    # The mail relay the authority sends email verification codes through (docs/authority.md,
    # "Invitations"): smtp://HOST:PORT; smtp_security starttls (default), tls (implicit, e.g.
    # port 465) or none (a relay on loopback only). Unset: accounts are not created by invitation,
    # except that `cvault dev` writes the messages to <data_dir>/mail instead.
    smtp_url: str | None = None
    smtp_security: str = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str = "cvault@localhost"
    smtp_ca_file: Path | None = None
    smtp_timeout: float = 10.0


# --- value parsers: each takes a raw value (str from the environment, any TOML
# type from a file, any Python value from an override) and the key to blame.


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty string")
    return value.strip()


def _database_url(value: object, key: str) -> str:
    text = _text(value, key)
    if urlsplit(text).scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"{key} must be a postgresql:// URL")
    return text


def _path(value: object, key: str) -> Path:
    if isinstance(value, Path):
        return value
    return Path(_text(value, key)).expanduser()


def _bool(value: object, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false")


def _seconds(value: object, key: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a positive number of seconds")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ConfigError(f"{key} must be a positive number of seconds") from None
    if not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a positive number of seconds")
    return value


def _duration(value: object, key: str) -> float:
    message = f"{key} must be a positive number of seconds (at most 3600), e.g. 2.5"
    if isinstance(value, bool):
        raise ConfigError(message)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(message) from None
    if not isinstance(value, int | float) or not 0 < value <= 3600:  # also refuses nan
        raise ConfigError(message)
    return float(value)


def _count(value: object, key: str) -> int:
    try:
        return _seconds(value, key)
    except ConfigError:
        raise ConfigError(f"{key} must be a positive integer") from None


def _listen(value: object, key: str) -> str:
    text = _text(value, key)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{key} must be HOST:PORT, e.g. 127.0.0.1:8201")
    return text


def _smtp_url(value: object, key: str) -> str:
    text = _text(value, key)
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "smtp" or not parts.hostname or port is None or parts.username or parts.path not in ("", "/"):
        raise ConfigError(f"{key} must be smtp://HOST:PORT (credentials go in smtp_username / smtp_password)")
    return text


def _smtp_security(value: object, key: str) -> str:
    text = _text(value, key).lower()
    if text not in ("starttls", "tls", "none"):
        raise ConfigError(f"{key} must be starttls, tls or none")
    return text


def _email_address(value: object, key: str) -> str:
    text = _text(value, key)
    if len(text) > 254 or "@" not in text or any(c in text for c in "\r\n<>, "):
        raise ConfigError(f"{key} must be one email address, like cvault@example.com")
    return text


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address: traffic to it never leaves the machine."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_smtp_security(values: Mapping[str, object]) -> None:
    """Plain-text SMTP (the verification codes in clear, and any relay login) only to a relay on loopback."""
    url = values.get("smtp_url")
    if not isinstance(url, str) or values.get("smtp_security", Config.smtp_security) != "none":
        return
    host = urlsplit(url).hostname or ""
    if not is_loopback_host(host):
        raise ConfigError(
            f"CVAULT_SMTP_SECURITY none sends mail in plain text: only for a relay on loopback, not {host}; "
            "use starttls or tls"
        )


def _url(value: object, key: str) -> str:
    text = _text(value, key)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{key} must be an http:// or https:// URL")
    return text.rstrip("/")


def _networks(value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items: list[object] = [item for item in value.split(",") if item.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ConfigError(f"{key} must be a list of CIDR networks")
    networks = []
    for item in items:
        try:
            networks.append(str(ipaddress.ip_network(_text(item, key), strict=False)))
        except ValueError:
            raise ConfigError(f"{key} contains {item!r}, which is not a CIDR network") from None
    return tuple(networks)


def _base64_bytes(value: object, key: str, size: int, what: str) -> bytes:
    """``size`` bytes, given as base64 text (or as bytes by a caller in code); ``what`` names them in errors."""
    if isinstance(value, bytes):
        raw = value
    else:
        try:
            raw = base64.b64decode(_text(value, key), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{key} must be base64 of {what}") from None
    if len(raw) != size:
        raise ConfigError(f"{key} must be base64 of {what}")
    return raw


def _public_key(value: object, key: str) -> bytes:
    return _base64_bytes(value, key, 32, "a 32-byte X25519 public key")


def _feed_token(value: object, key: str) -> str:
    text = _text(value, key)
    if not FEED_TOKEN.fullmatch(text):
        # The value is a credential: the message does not repeat it.
        raise ConfigError(f"{key} must be 'cvf_' and 43 base64url characters (see docs/revocation.md)")
    return text


def _digests(value: object, key: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"{key} must be a list of SHA-256 digests (64 hex digits each)")
    digests = []
    for item in items:
        text = item.strip().lower() if isinstance(item, str) else ""
        if text and not _SHA256_HEX.fullmatch(text):
            raise ConfigError(f"{key} must be a list of SHA-256 digests (64 hex digits each)")
        if text:
            digests.append(text)
    return tuple(digests)


def _log_level(value: object, key: str) -> str:
    level = _text(value, key).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{key} must be one of {', '.join(LOG_LEVELS)}")
    return level


def _log_format(value: object, key: str) -> str:
    text = _text(value, key).lower()
    if text not in ("text", "json"):
        raise ConfigError(f"{key} must be text or json")
    return text


def _master_key(value: object, key: str) -> bytes:
    return _base64_bytes(value, key, MASTER_KEY_SIZE, f"{MASTER_KEY_SIZE} random bytes")


def _metrics_token(value: object, key: str) -> str:
    text = _text(value, key)
    if len(text) < 16 or not text.isascii() or not text.isprintable() or " " in text:
        raise ConfigError(f"{key} must be at least 16 printable ASCII characters without spaces")
    return text


def _command(value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and value and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    try:
        argv = tuple(shlex.split(_text(value, key)))
    except ValueError:
        raise ConfigError(f"{key} is not a valid command line (check its quotes)") from None
    if not argv:
        raise ConfigError(f"{key} must be a command, e.g. 'age -d -i id.txt master.key.age'")
    return argv


_PARSERS: dict[str, Callable[[object, str], Any]] = {
    "database_url": _database_url,
    "master_key": _master_key,
    "master_key_file": _path,
    "master_key_command": _command,
    "master_key_command_timeout": _seconds,
    "master_key_previous": _master_key,
    "master_key_previous_file": _path,
    "key_max_age": _seconds,
    "dev": _bool,
    "data_dir": _path,
    "authority_listen": _listen,
    "store_listen": _listen,
    "authority_url": _url,
    "store_url": _url,
    "authority_org_public_key": _public_key,
    "login_discharge_ttl": _seconds,
    "org_discharge_ttl": _seconds,
    "session_ttl": _seconds,
    "trusted_proxies": _networks,
    "log_level": _log_level,
    "log_format": _log_format,
    "sql_dir": _path,
    "database_pool_size": _count,
    "database_timeout": _duration,
    "readiness_timeout": _duration,
    "keepalive_timeout": _seconds,
    "header_read_timeout": _seconds,
    "max_connections": _count,
    "max_connections_per_client": _count,
    "accept_error_log_interval": _seconds,
    "tls_cert_file": _path,
    "tls_key_file": _path,
    "tls_client_ca_file": _path,
    "listen_insecure": _bool,
    "metrics_listen": _listen,
    "metrics_token": _metrics_token,
    "revocation_feed": _bool,
    "revocation_feed_token": _feed_token,
    "revocation_feed_token_sha256": _digests,
    "revocation_feed_max_lag": _seconds,
    "revocation_feed_url": _url,
    "revocation_feed_ca_file": _path,
    "authority_keys_url": _url,
    "authority_keys_interval": _duration,
    "key_watch_interval": _duration,
    "idempotency_key_ttl": _seconds,
    "workload_jwt_max_lifetime": _seconds,
    "workload_jwt_leeway": _seconds,
    "workload_jwt_max_uses": _count,
    "workload_jwks_ca_file": _path,
    "workload_jwks_max_age": _seconds,
    "workload_jwks_refetch_interval": _seconds,
    "smtp_url": _smtp_url,
    "smtp_security": _smtp_security,
    "smtp_username": _text,
    "smtp_password": _text,
    "smtp_from": _email_address,
    "smtp_ca_file": _path,
    "smtp_timeout": _duration,
}

# ``dev`` is chosen by running ``cvault dev``, not by a variable that could leak
# into a production environment; the master key stays out of files (see above).
_NOT_FROM_ENV = frozenset({"dev"})
_NOT_FROM_TOML = frozenset({"dev", "master_key", "master_key_previous"})


def _read_toml(path: Path) -> dict[str, object]:
    import tomllib

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def read_master_key_file(path: Path, key: str = "CVAULT_MASTER_KEY_FILE") -> bytes:
    """The master key in ``path`` (base64 text); errors name ``key``."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{key}: cannot read master key file {path}") from None
    return _master_key(text, f"{key} ({path})")


def load_config(
    env: Mapping[str, str] = os.environ,
    toml_path: Path | None = None,
    **overrides: object,
) -> Config:
    """Build the :class:`Config` from defaults, TOML, environment and overrides.

    ``overrides`` are field names of :class:`Config` (for command-line flags);
    ``None`` values are ignored so callers can pass unset flags straight through.
    Raises :class:`ConfigError` naming the offending key.
    """
    values: dict[str, object] = {}

    if toml_path is None and env.get("CVAULT_CONFIG"):
        toml_path = Path(env["CVAULT_CONFIG"])
    if toml_path is not None:
        for key, raw in _read_toml(toml_path).items():
            if key not in _PARSERS or key in _NOT_FROM_TOML:
                raise ConfigError(f"unknown key {key!r} in config file {toml_path}")
            values[key] = _PARSERS[key](raw, f"{key} (in {toml_path})")

    for name, raw in env.items():
        # An empty variable counts as unset, as `VAR= cvault ...` is how shells unset one.
        if not name.startswith(PREFIX) or name in CLIENT_VARIABLES or name.startswith(TOOL_PREFIX) or not raw.strip():
            continue
        key = name.removeprefix(PREFIX).lower()
        if key not in _PARSERS or key in _NOT_FROM_ENV:
            raise ConfigError(f"unknown environment variable {name}")
        values[key] = _PARSERS[key](raw, name)

    for key, raw in overrides.items():
        if key not in _PARSERS:
            raise ConfigError(f"unknown setting {key!r}")
        if raw is not None:
            values[key] = _PARSERS[key](raw, key)

    sources = [k for k in ("master_key", "master_key_file", "master_key_command") if k in values]
    if len(sources) > 1:
        names = " and ".join(f"CVAULT_{k.upper()}" for k in sources)
        raise ConfigError(f"set one master key source: {names}, not {'both' if len(sources) == 2 else 'all three'}")
    key_file = values.get("master_key_file")
    if isinstance(key_file, Path):
        values["master_key"] = read_master_key_file(key_file)
    previous_file = values.get("master_key_previous_file")
    if isinstance(previous_file, Path):
        if "master_key_previous" in values:
            raise ConfigError("set either CVAULT_MASTER_KEY_PREVIOUS or CVAULT_MASTER_KEY_PREVIOUS_FILE, not both")
        values["master_key_previous"] = read_master_key_file(previous_file, "CVAULT_MASTER_KEY_PREVIOUS_FILE")

    _check_smtp_security(values)

    # With TLS on, the published URLs (and so the token locations) default to https.
    if "tls_cert_file" in values:
        for url_key in ("authority_url", "store_url"):
            if url_key not in values:
                values[url_key] = "https" + str(getattr(Config, url_key)).removeprefix("http")

    known = {f.name for f in fields(Config)}
    assert set(values) <= known
    return Config(**values)  # type: ignore[arg-type]


# What a client reads (vault/client/environment.py): where the services are, nothing of theirs. A server's
# settings in the client's shell (a relative CVAULT_MASTER_KEY_FILE, a database URL) are not its business.
CLIENT_SETTINGS = tuple(f.name for f in fields(ClientConfig))


def load_client_config(env: Mapping[str, str] = os.environ, toml_path: Path | None = None) -> ClientConfig:
    """The :class:`ClientConfig`: :data:`CLIENT_SETTINGS` from the environment and the TOML file, else defaults.

    The TOML file's values win over the environment's (as they always have for the client; the services'
    order is the other way round, see :func:`load_config`).
    """
    if toml_path is None and env.get("CVAULT_CONFIG"):
        toml_path = Path(env["CVAULT_CONFIG"])
    values: dict[str, str] = {}
    for key in CLIENT_SETTINGS:
        name = PREFIX + key.upper()
        raw = env.get(name, "")
        if raw.strip():
            values[key] = _PARSERS[key](raw, name)
    if toml_path is not None:
        table = _read_toml(toml_path)
        values |= {key: _PARSERS[key](table[key], f"{key} (in {toml_path})") for key in CLIENT_SETTINGS if key in table}
    return ClientConfig(**values)


# Keys printed by master_key_command, by command line: a process runs each command once
# (cvault dev opens two services with the same configuration).
_COMMAND_KEYS: dict[tuple[str, ...], bytes] = {}


def run_master_key_command(argv: tuple[str, ...], timeout: float) -> bytes:
    """Run ``argv`` and return the master key it prints on standard output.

    Its standard error goes to ours (a passphrase prompt or a KMS error reaches the
    operator); its environment is ours without the ``CVAULT_MASTER_KEY*`` variables,
    and the key only ever travels through the pipe, never argv or the environment.
    Every failure is a :class:`ConfigError` saying what to do; none quotes the output.
    """
    import subprocess

    name = "CVAULT_MASTER_KEY_COMMAND"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_MASTER_KEY")}
    try:
        done = subprocess.run(  # noqa: S603 (the operator's own command, no shell)
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=sys.stderr, env=env, timeout=timeout
        )
    except FileNotFoundError:
        raise ConfigError(f"{name}: command {argv[0]!r} not found; install it or fix the setting") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"{name}: {argv[0]!r} did not finish within {timeout:g} s; "
            "raise CVAULT_MASTER_KEY_COMMAND_TIMEOUT or check that it does not wait for input"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot run {argv[0]!r}: {exc.strerror}") from None
    if done.returncode != 0:
        raise ConfigError(f"{name}: {argv[0]!r} exited with status {done.returncode} (its messages are above)")
    try:
        text = done.stdout.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: {argv[0]!r} must print base64 of {MASTER_KEY_SIZE} random bytes") from None
    return _master_key(text, f"{name} (the output of {argv[0]!r})")


def require_master_key(config: Config) -> bytes:
    """The master key, or a :class:`ConfigError` telling the operator how to set one.

    With ``master_key_command`` this runs the command (once per process and command).
    """
    if config.master_key is not None:
        return config.master_key
    if config.master_key_command is not None:
        key = _COMMAND_KEYS.get(config.master_key_command)
        if key is None:
            key = run_master_key_command(config.master_key_command, config.master_key_command_timeout)
            _COMMAND_KEYS[config.master_key_command] = key
        return key
    raise ConfigError(
        "no master key: set CVAULT_MASTER_KEY (base64 of 32 random bytes), "
        "CVAULT_MASTER_KEY_FILE (a file holding it) or CVAULT_MASTER_KEY_COMMAND (a command printing it)"
    )


def previous_master_keys(config: Config) -> tuple[bytes, ...]:
    """The master key being rotated away from, if one is configured (a transition window)."""
    return () if config.master_key_previous is None else (config.master_key_previous,)


def require_database_url(config: Config) -> str:
    """The database URL, or a :class:`ConfigError` naming ``CVAULT_DATABASE_URL``."""
    if config.database_url is None:
        raise ConfigError("no database: set CVAULT_DATABASE_URL (or run `cvault dev` for an embedded PostgreSQL)")
    return config.database_url


def require_master_keys(config: Config) -> MasterKeys:
    """The master key and, during a transition window, the previous one (what services open KEKs with)."""
    from vault.crypto.keyring import MasterKey, MasterKeys

    current = MasterKey(require_master_key(config))
    return MasterKeys(current, tuple(MasterKey(key) for key in previous_master_keys(config)))
