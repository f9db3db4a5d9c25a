"""Typed calls for the authority's routes in docs/api.md: sessions, orgs, members, tokens.

Session routes send the login session; ``create_token`` may instead send a
permission bundle with ``C`` on the org; ``strip`` sends a permission token with
its bound login discharge (fetched here with the session).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

from .credentials import TokenBundle
from .http import HTTP

__all__ = ["AuthorityClient"]


class _Owner(Protocol):
    def session_header(self) -> str: ...

    async def authority_bundle(self, org: int | None = None, token: TokenBundle | None = None) -> str: ...


class AuthorityClient:
    def __init__(self, http: HTTP, url: str, owner: _Owner) -> None:
        self._http = http
        self.url = url
        self._owner = owner

    async def _session_call(self, method: str, path: str, body: Any = None) -> Any:
        return await self._http.request(method, self.url + path, authorization=self._owner.session_header(), body=body)

    # -- sessions -------------------------------------------------------------------

    async def login(self, email: str, password: str) -> dict[str, Any]:
        """``{session, user_id, expires_at}``; the password is sent once and not kept."""
        reply: dict[str, Any] = await self._http.request(
            "POST", self.url + "/v1/sessions", body={"email": email, "password": password}
        )
        return reply

    async def logout(self) -> None:
        await self._session_call("DELETE", "/v1/sessions/current")

    async def me(self) -> dict[str, Any]:
        reply: dict[str, Any] = await self._session_call("GET", "/v1/me")
        return reply

    # -- orgs and members -----------------------------------------------------------

    async def create_org(self, slug: str) -> dict[str, Any]:
        reply: dict[str, Any] = await self._session_call("POST", "/v1/orgs", {"slug": slug})
        return reply

    async def list_orgs(self) -> list[dict[str, Any]]:
        reply = await self._session_call("GET", "/v1/orgs")
        return list(reply["orgs"])

    async def list_members(self, org: int) -> list[dict[str, Any]]:
        reply = await self._session_call("GET", f"/v1/orgs/{org}/members")
        return list(reply["members"])

    async def invite(self, org: int, email: str, role: str) -> dict[str, Any]:
        """``{id, org, slug, email, role, expires_at, code}``; the invitee accepts it (see :meth:`accept`)."""
        reply: dict[str, Any] = await self._session_call(
            "POST", f"/v1/orgs/{org}/invitations", {"email": email, "role": role}
        )
        return reply

    async def invitations(self) -> list[dict[str, Any]]:
        """Pending invitations of the logged-in user's email."""
        reply = await self._session_call("GET", "/v1/invitations")
        return list(reply["invitations"])

    async def accept(self, invitation_id: str, *, code: str, password: str | None = None) -> dict[str, Any]:
        """Accept with the invitation code: with the session, or (no account yet) with a new account's password."""
        path = f"/v1/invitations/{quote(invitation_id, safe='')}/accept"
        if password is None:
            reply: dict[str, Any] = await self._session_call("POST", path, {"code": code})
        else:
            reply = await self._http.request("POST", self.url + path, body={"code": code, "password": password})
        return reply

    async def set_role(self, org: int, user_id: int, role: str) -> dict[str, Any]:
        reply: dict[str, Any] = await self._session_call("PATCH", f"/v1/orgs/{org}/members/{user_id}", {"role": role})
        return reply

    async def remove_member(self, org: int, user_id: int) -> None:
        await self._session_call("DELETE", f"/v1/orgs/{org}/members/{user_id}")

    # -- tokens ---------------------------------------------------------------------

    async def create_token(
        self, org: int, *, mask: str | None = None, ttl: int | None = None, bundle: TokenBundle | None = None
    ) -> dict[str, Any]:
        """A permission token ``{token, id, expires_at}``, with the session or (``bundle``) a permission bundle."""
        body: dict[str, Any] = {"org": org}
        if mask is not None:
            body["mask"] = mask
        if ttl is not None:
            body["ttl"] = ttl
        if bundle is None:
            authorization = self._owner.session_header()
        else:
            authorization = f"Bearer {await self._owner.authority_bundle(org, bundle)}"
        reply: dict[str, Any] = await self._http.request(
            "POST", self.url + "/v1/tokens", authorization=authorization, body=body
        )
        return reply

    async def list_tokens(self) -> list[dict[str, Any]]:
        reply = await self._session_call("GET", "/v1/tokens")
        return list(reply["tokens"])

    async def strip(self, permission: TokenBundle) -> dict[str, Any]:
        """A service token ``{token, id, parent}`` from a permission token (its login discharge fetched here)."""
        bundle = await self._owner.authority_bundle(None, permission)
        reply: dict[str, Any] = await self._http.request(
            "POST", self.url + "/v1/tokens/strip", authorization=f"Bearer {bundle}"
        )
        return reply

    async def revoke(self, token_id: str) -> list[str]:
        reply = await self._session_call("POST", f"/v1/tokens/{quote(token_id, safe='')}/revoke")
        return list(reply["revoked"])

    async def revocations(self, since: int = 0) -> dict[str, Any]:
        reply: dict[str, Any] = await self._http.request(
            "GET", self.url + "/v1/revocations", params={"since": str(since)}
        )
        return reply

    async def keys(self) -> dict[str, Any]:
        reply: dict[str, Any] = await self._http.request("GET", self.url + "/.well-known/cvault/keys")
        return reply
