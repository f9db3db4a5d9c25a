"""Where a client finds its services and credentials: the one reader of the ``CVAULT_*`` client settings.

The CLI and :meth:`Client.from_env <vault.client.Client.from_env>` both come here,
so a library user's program sees exactly what ``cvault`` would.

URLs: ``CVAULT_AUTHORITY_URL`` / ``CVAULT_STORE_URL`` (or the TOML file named by
``CVAULT_CONFIG``), else the ones saved by ``cvault login`` / ``cvault dev``,
else the defaults. Credentials, each from the variable or from the file its
``_FILE`` variable names: ``CVAULT_STORE_TOKEN``, ``CVAULT_AUTH_TOKEN`` (a
service or permission token); the login session from ``CVAULT_SESSION`` or the
saved session (only for the authority it was made for); a workload's JWT from
``CVAULT_OIDC_TOKEN_FILE``, ``CVAULT_OIDC_TOKEN`` or GitHub Actions
(:mod:`.workload_identity`). ``CVAULT_CACERT``: a PEM file of the CA that signed the
services' certificates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault.config import load_client_config
from vault.errors import ConfigError

from .credentials import Credentials
from .session_file import SessionFile
from .workload_identity import identity_from_env

__all__ = ["ClientSettings", "load_settings", "read_secret_variable"]

_MAX_TOKEN_FILE_BYTES = 1024 * 1024


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

    def client_arguments(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~vault.client.Client` (and ``SyncClient``)."""
        return {
            "store_url": self.store_url,
            "authority_url": self.authority_url,
            "credentials": self.credentials,
            "ca_cert": self.ca_cert,
            # Permission tokens cached in the session file belong to its session's user only.
            "token_cache": self.session_file if self.session_from_file else None,
        }


def load_settings(
    env: Mapping[str, str] = os.environ, config: Path | None = None, *, ca_cert: str | None = None
) -> ClientSettings:
    """The settings from ``env`` (and the TOML file ``config``, and the saved session)."""
    session_file = SessionFile()
    saved = session_file.load()
    loaded = load_client_config(env, config)
    authority_url = loaded.authority_url
    store_url = loaded.store_url
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
        workload_identity=identity_from_env(env, authority_url),
        workload_role=env.get("CVAULT_WORKLOAD_ROLE"),
    )
    return ClientSettings(authority_url, store_url, credentials, session_file, from_file, ca_cert)
