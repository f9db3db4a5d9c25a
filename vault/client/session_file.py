"""The operator's saved login: ``<user config dir>/cvault/session.json``, mode 0600 in a 0700 directory.

Holds ``{authority_url, store_url?, session, email, permission_tokens: {org: token}}``.
The permission tokens are the ones the CLI minted with the session so it does
not mint a new one on every command; they are worthless without the session's
login discharge. Nothing else is written to disk by the client.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import platformdirs

from vault.errors import ConfigError

__all__ = ["SessionFile", "default_session_path"]

_MAX_BYTES = 1024 * 1024


def default_session_path() -> Path:
    return Path(platformdirs.user_config_dir("cvault")) / "session.json"


class SessionFile:
    """A small JSON document rewritten atomically with owner-only permissions."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_session_path()

    def load(self) -> dict[str, Any]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{self.path} is readable by other users; run `chmod 600 {self.path}` or log in again")
        if st.st_size > _MAX_BYTES:
            raise ConfigError(f"{self.path} is too large to be a cvault session; delete it and log in again")
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ConfigError(f"{self.path} is not a readable cvault session; delete it and log in again") from None
        return data if isinstance(data, dict) else {}

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        # A stale or planted file (a symlink to elsewhere) at the temporary name is removed, and
        # O_EXCL | O_NOFOLLOW create a fresh file: the session is never written through a link.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    # -- the client's TokenCache protocol ----------------------------------------------

    def get(self, org: int) -> str | None:
        token = self.load().get("permission_tokens", {}).get(str(org))
        return token if isinstance(token, str) else None

    def put(self, org: int, token: str) -> None:
        data = self.load()
        if not data.get("session"):
            return
        tokens = data.get("permission_tokens")
        data["permission_tokens"] = {**(tokens if isinstance(tokens, dict) else {}), str(org): token}
        self.save(data)
