"""Calls for the authority's workload routes (docs/workload-identity.md), with the login session.

Replies are the routes' JSON objects as documented in the authority's OpenAPI document.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .http import HTTP

__all__ = ["WorkloadsClient"]


class WorkloadsClient:
    def __init__(self, http: HTTP, url: str, session_header: str) -> None:
        self._http = http
        self._url = url
        self._auth = session_header

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        return await self._http.request(method, self._url + path, authorization=self._auth, body=body)

    async def add_issuer(self, org: int, issuer: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = await self._call("POST", f"/v1/orgs/{org}/workload-issuers", issuer)
        return reply

    async def issuers(self, org: int) -> list[dict[str, Any]]:
        reply = await self._call("GET", f"/v1/orgs/{org}/workload-issuers")
        return list(reply["issuers"])

    async def remove_issuer(self, org: int, issuer_id: str) -> list[str]:
        reply = await self._call("DELETE", f"/v1/orgs/{org}/workload-issuers/{quote(issuer_id, safe='')}")
        return list(reply["revoked_bindings"])

    async def bind(self, org: int, binding: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = await self._call("POST", f"/v1/orgs/{org}/workloads", binding)
        return reply

    async def bindings(self, org: int) -> list[dict[str, Any]]:
        reply = await self._call("GET", f"/v1/orgs/{org}/workloads")
        return list(reply["bindings"])

    async def binding(self, org: int, name: str) -> dict[str, Any]:
        reply: dict[str, Any] = await self._call("GET", f"/v1/orgs/{org}/workloads/{quote(name, safe='')}")
        return reply

    async def unbind(self, org: int, name: str) -> str:
        reply = await self._call("DELETE", f"/v1/orgs/{org}/workloads/{quote(name, safe='')}")
        return str(reply["revoked"])
