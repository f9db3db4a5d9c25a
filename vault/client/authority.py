"""Typed calls for the authority's routes in docs/api.md: sessions, orgs, members, tokens.

Session routes send the login session; ``create_token`` may instead send a
permission bundle with ``C`` on the org; ``strip`` sends a permission token with
its bound login discharge (fetched here with the session).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

from .authority_models import (
    Accepted,
    Account,
    AuthorityKeys,
    Invitation,
    Member,
    Membership,
    Organization,
    PermissionToken,
    Revocations,
    RoleChanged,
    ServiceToken,
    Session,
    TokenInfo,
)
from .credentials import TokenBundle
from .http import HTTP
from .models import _parse, _str

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

    async def login(self, email: str, password: str) -> Session:
        """A new session; the password is sent once and not kept."""
        reply = await self._http.request("POST", self.url + "/v1/sessions", body={"email": email, "password": password})
        return Session.from_json(reply)

    async def logout(self) -> None:
        await self._session_call("DELETE", "/v1/sessions/current")

    async def me(self) -> Account:
        return Account.from_json(await self._session_call("GET", "/v1/me"))

    # -- orgs and members -----------------------------------------------------------

    async def create_org(self, slug: str) -> Organization:
        return Organization.from_json(await self._session_call("POST", "/v1/orgs", {"slug": slug}))

    async def list_orgs(self) -> list[Membership]:
        return Membership.list_from_json(await self._session_call("GET", "/v1/orgs"))

    async def list_members(self, org: int) -> list[Member]:
        return Member.list_from_json(await self._session_call("GET", f"/v1/orgs/{org}/members"))

    async def invite(self, org: int, email: str, role: str) -> Invitation:
        """The invitation, with its ``code``; the invitee accepts it with both (see :meth:`accept`)."""
        reply = await self._session_call("POST", f"/v1/orgs/{org}/invitations", {"email": email, "role": role})
        return Invitation.from_json(reply)

    async def invitations(self) -> list[Invitation]:
        """Pending invitations of the logged-in user's email (without their codes)."""
        return Invitation.list_from_json(await self._session_call("GET", "/v1/invitations"))

    async def accept(
        self, invitation_id: str, *, code: str, password: str | None = None, verification: str | None = None
    ) -> Accepted:
        """Accept with the invitation code: with the session, or (no account yet) with the verification code
        mailed to the invited address (:meth:`send_verification`) and a new account's password."""
        path = f"/v1/invitations/{quote(invitation_id, safe='')}/accept"
        if password is None:
            reply = await self._session_call("POST", path, {"code": code})
        else:
            body = {"code": code, "password": password, "verification": verification}
            reply = await self._http.request("POST", self.url + path, body=body)
        return Accepted.from_json(reply)

    async def send_verification(self, invitation_id: str, *, code: str) -> str:
        """Have the authority mail the invited address a verification code (no account yet); its reply's message,
        the same whether or not the address has an account."""
        path = f"/v1/invitations/{quote(invitation_id, safe='')}/accept"
        reply = await self._http.request("POST", self.url + path, body={"code": code})
        message = reply.get("message") if isinstance(reply, dict) else None
        return message if isinstance(message, str) else "a verification code was sent to the invited address"

    async def set_role(self, org: int, user_id: int, role: str) -> RoleChanged:
        reply = await self._session_call("PATCH", f"/v1/orgs/{org}/members/{user_id}", {"role": role})
        return RoleChanged.from_json(reply)

    async def remove_member(self, org: int, user_id: int) -> None:
        await self._session_call("DELETE", f"/v1/orgs/{org}/members/{user_id}")

    # -- tokens ---------------------------------------------------------------------

    async def create_token(
        self, org: int, *, mask: str | None = None, ttl: int | None = None, bundle: TokenBundle | None = None
    ) -> PermissionToken:
        """A permission token, minted with the session or (``bundle``) a permission bundle with ``C`` on the org."""
        body: dict[str, Any] = {"org": org}
        if mask is not None:
            body["mask"] = mask
        if ttl is not None:
            body["ttl"] = ttl
        if bundle is None:
            authorization = self._owner.session_header()
        else:
            authorization = f"Bearer {await self._owner.authority_bundle(org, bundle)}"
        reply = await self._http.request("POST", self.url + "/v1/tokens", authorization=authorization, body=body)
        return PermissionToken.from_json(reply)

    async def list_tokens(self) -> list[TokenInfo]:
        return TokenInfo.list_from_json(await self._session_call("GET", "/v1/tokens"))

    async def strip(self, permission: TokenBundle) -> ServiceToken:
        """A service token from a permission token (its login discharge fetched here)."""
        bundle = await self._owner.authority_bundle(None, permission)
        reply = await self._http.request("POST", self.url + "/v1/tokens/strip", authorization=f"Bearer {bundle}")
        return ServiceToken.from_json(reply)

    async def revoke(self, token_id: str) -> list[str]:
        reply = await self._session_call("POST", f"/v1/tokens/{quote(token_id, safe='')}/revoke")
        return _parse("revoke reply", lambda d: [_str(t) for t in d["revoked"]], reply)

    async def revocations(self, since: int = 0) -> Revocations:
        reply = await self._http.request("GET", self.url + "/v1/revocations", params={"since": str(since)})
        return Revocations.from_json(reply)

    async def keys(self) -> AuthorityKeys:
        return AuthorityKeys.from_json(await self._http.request("GET", self.url + "/.well-known/cvault/keys"))
