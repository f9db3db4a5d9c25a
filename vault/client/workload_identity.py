"""Where a workload's platform-signed JWT comes from (docs/workload-identity.md).

The org discharger accepts ``Authorization: Bearer <JWT>`` in place of an authority
token. A source is asked for a JWT each time a discharge is fetched (never cached
here: the platform rotates them), from the first of:

* ``CVAULT_OIDC_TOKEN_FILE``: a file read again every time (Kubernetes' projected
  service account token, which the kubelet rewrites before it expires);
* ``CVAULT_OIDC_TOKEN``: the JWT itself;
* GitHub Actions' request protocol: ``GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=...``
  with ``Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`` (the job needs
  ``permissions: id-token: write``); the audience is ``CVAULT_OIDC_AUDIENCE``, by default
  the authority's URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from vault.errors import ConfigError, InvalidToken

from .http import HTTP

__all__ = ["FileIdentity", "GitHubActionsIdentity", "IdentitySource", "StaticIdentity", "identity_from_env"]

MAX_JWT_CHARS = 16 * 1024


class IdentitySource(Protocol):
    async def token(self, http: HTTP) -> str:
        """A current JWT; raises :class:`~vault.errors.VaultError` when none can be had."""


def _checked(text: str, where: str) -> str:
    text = text.strip()
    if not text or len(text) > MAX_JWT_CHARS or text.count(".") != 2:
        raise InvalidToken(f"{where} does not hold a JWT")
    return text


@dataclass(frozen=True)
class StaticIdentity:
    value: str = field(repr=False)

    async def token(self, http: HTTP) -> str:
        return _checked(self.value, "CVAULT_OIDC_TOKEN")


@dataclass(frozen=True)
class FileIdentity:
    path: Path

    async def token(self, http: HTTP) -> str:
        # Read on every discharge: the platform replaces the file before the JWT in it expires.
        try:
            with self.path.open("r", encoding="utf-8") as handle:
                text = handle.read(MAX_JWT_CHARS + 1)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"CVAULT_OIDC_TOKEN_FILE: cannot read {self.path}: {getattr(exc, 'strerror', None) or 'not text'}"
            ) from None
        return _checked(text, f"CVAULT_OIDC_TOKEN_FILE ({self.path})")


@dataclass(frozen=True)
class GitHubActionsIdentity:
    request_url: str
    request_token: str = field(repr=False)
    audience: str

    async def token(self, http: HTTP) -> str:
        separator = "&" if "?" in self.request_url else "?"
        reply = await http.request(
            "GET",
            f"{self.request_url}{separator}audience={quote(self.audience, safe='')}",
            authorization=f"bearer {self.request_token}",
        )
        value = reply.get("value") if isinstance(reply, dict) else None
        if not isinstance(value, str):
            raise InvalidToken("GitHub Actions answered without an ID token")
        return _checked(value, "GitHub Actions' ID token")


def identity_from_env(env: Mapping[str, str], authority_url: str) -> IdentitySource | None:
    """The workload identity the environment names, if any (module docstring)."""
    path = env.get("CVAULT_OIDC_TOKEN_FILE", "").strip()
    value = env.get("CVAULT_OIDC_TOKEN", "").strip()
    if path and value:
        raise ConfigError("set either CVAULT_OIDC_TOKEN or CVAULT_OIDC_TOKEN_FILE, not both")
    if path:
        return FileIdentity(Path(path).expanduser())
    if value:
        return StaticIdentity(value)
    request_url = env.get("ACTIONS_ID_TOKEN_REQUEST_URL", "").strip()
    request_token = env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "").strip()
    if request_url and request_token:
        audience = env.get("CVAULT_OIDC_AUDIENCE", "").strip() or authority_url
        return GitHubActionsIdentity(request_url, request_token, audience)
    return None
