"""Fetching workload issuers' key sets over TLS: the :class:`~vault.authority.jwks.KeySetFetcher` of the authority.

Only ``https://`` (the issuer and its ``jwks_uri`` alike), verified against the
system's CAs or ``workload_jwks_ca_file``; no redirects; replies capped in size and
time. With no ``jwks_url`` configured, OIDC discovery: the document at
``<issuer>/.well-known/openid-configuration`` must name the same ``issuer``.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from vault.authority.workload_records import WorkloadIssuer
from vault.errors import ConfigError, Unavailable

__all__ = ["HttpsKeySetFetcher"]

MAX_DOCUMENT_BYTES = 64 * 1024
TIMEOUT = 5.0


class HttpsKeySetFetcher:
    def __init__(self, ca_file: Path | None = None) -> None:
        try:
            self._ssl = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError):
            raise ConfigError(f"CVAULT_WORKLOAD_JWKS_CA_FILE: cannot read CA certificates in {ca_file}") from None
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def fetch(self, issuer: WorkloadIssuer) -> Mapping[str, Any]:
        jwks_url = issuer.jwks_url
        if jwks_url is None:
            discovery = await self._get_json(issuer.issuer.rstrip("/") + "/.well-known/openid-configuration", issuer)
            if discovery.get("issuer") != issuer.issuer:
                raise Unavailable(f"the discovery document of {issuer.issuer} names another issuer")
            jwks_url = discovery.get("jwks_uri")
            if not isinstance(jwks_url, str):
                raise Unavailable(f"the discovery document of {issuer.issuer} has no jwks_uri")
        return await self._get_json(jwks_url, issuer)

    async def _get_json(self, url: str, issuer: WorkloadIssuer) -> dict[str, Any]:
        if urlsplit(url).scheme != "https":
            raise Unavailable(f"the keys of {issuer.issuer} must be fetched over https")
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT), connector=aiohttp.TCPConnector(ssl=self._ssl)
            )
        try:
            async with self._http.get(url, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise Unavailable(f"fetching the keys of {issuer.issuer}: HTTP {resp.status}")
                body = await resp.content.read(MAX_DOCUMENT_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as exc:
            raise Unavailable(f"cannot fetch the keys of {issuer.issuer} ({type(exc).__name__})") from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise Unavailable(f"the key document of {issuer.issuer} is over {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(body)
        except ValueError:
            raise Unavailable(f"the key document of {issuer.issuer} is not JSON") from None
        if not isinstance(document, dict):
            raise Unavailable(f"the key document of {issuer.issuer} is not a JSON object")
        return document
