"""Schemathesis, the real CLI with every check, over the authority's generated OpenAPI document (issue 28 item 1).

The service serves its document at ``/openapi.json``, generated from the models its handlers decode and encode
(:mod:`vault.web.contract`); ``st run --checks all`` (tests/support/schemathesis.py) runs it against the live
services. The acceptance is no contract mismatch at all: no 5xx, every status, content type and body as
documented, data the document forbids refused with a 4xx and data it allows accepted, undeclared methods answered
405 with ``Allow``, a missing or ignored credential refused.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from tests.support.enrolled_org import EnrolledOrg, world
from tests.support.harness import harness
from tests.support.schemathesis import run_schemathesis, schemathesis_config
from vault.authority.revocation_feed import MAX_FEED_WAIT
from vault.macaroon import decode_token

__all__ = ["harness", "world"]


def _drawn(dictionary: str) -> dict[str, Any]:
    # Most cases take the world's value (the operation's logic runs); the rest are generated (its checks run).
    return {"dictionary": dictionary, "probability": 0.8}


def _ticket(token: str, location: str) -> tuple[str, str]:
    """A third-party ticket of ``token`` for ``location`` and the token's binding id, as the protocol sends them."""
    macaroon = decode_token(token)
    [caveat] = macaroon.third_party_tickets(location)
    return base64.b64encode(caveat.ticket).decode(), base64.b64encode(macaroon.binding_id()).decode()


async def _authority_data(world: EnrolledOrg) -> tuple[dict[str, dict[str, Any]], dict[str, list[Any]]]:
    """What the authority's operations need to reach their logic rather than a 404: per-operation settings and the
    dictionaries they draw from.

    The operations that take things away (a member, a token, an issuer, a binding) act as the owner of a scratch
    org of their own, so that what they remove (schemathesis also feeds ids it read from earlier replies) is never
    the world's: the other operations keep the world's owner, org, bundle, issuer and binding for the whole run.
    """
    h, owner, org = world.h, world.owner, world.org
    scratch = await h.new_user("scratch@example.com")
    scratch_org = await h.create_org(scratch, "scratch")
    member = await h.add_member(scratch, scratch_org, "member@example.com", "reader")
    leaving = await h.add_member(scratch, scratch_org, "leaving@example.com", "reader")
    # The owner's own email: accepting reaches the membership check (409) rather than "no such invitation".
    invite = {"email": owner.email, "role": "reader"}
    r = await h.authority("POST", f"/v1/orgs/{org}/invitations", owner.session, invite)
    assert r.status == 201, r
    invitation, code = r.body["id"], r.body["code"]
    r = await h.authority("POST", "/v1/tokens", scratch.session, {"org": scratch_org, "mask": "r"})
    assert r.status == 201, r
    doomed = r.body["id"]
    r = await h.authority("POST", "/v1/tokens", owner.session, {"org": org, "mask": "r"})
    assert r.status == 201, r
    permission = r.body["token"]
    issuers = {}
    for name, (who, where) in {
        "kept": (owner, org),
        "removed": (scratch, scratch_org),
        "other": (scratch, scratch_org),
    }.items():
        body = {"issuer": f"https://{name}.issuer.example", "jwks_url": f"https://{name}.issuer.example/jwks"}
        r = await h.authority("POST", f"/v1/orgs/{where}/workload-issuers", who.session, body)
        assert r.status == 201, r
        issuers[name] = r.body
    # Each removal removes one: enough bindings that most cases still find one (of an issuer nothing removes).
    bindings = {org: ["ci-kept"], scratch_org: [f"ci-{n}" for n in range(8)]}
    for where, names in bindings.items():
        who, issuer = (owner, issuers["kept"]) if where == org else (scratch, issuers["other"])
        for name in names:
            body = {"name": name, "issuer": issuer["id"], "claims": {"sub": "repo:acme/*"}, "mask": "r"}
            r = await h.authority("POST", f"/v1/orgs/{where}/workloads", who.session, body)
            assert r.status == 201, r
    login_ticket, login_binding = _ticket(permission, f"{h.authority_url}/login")
    org_ticket, org_binding = _ticket(world.root, h.org_location)
    dictionaries: dict[str, list[Any]] = {
        "org": [org],
        "scratch_org": [scratch_org],
        "member": [member.id],
        "leaving": [leaving.id],
        "invitation": [invitation],
        "code": [code],
        "token": [doomed],
        "issuer": [issuers["removed"]["id"]],
        "issuer_url": [issuers["kept"]["issuer"]],
        "binding": ["ci-kept"],
        "binding_removed": bindings[scratch_org],
        "login_ticket": [login_ticket],
        "login_binding": [login_binding],
        "org_ticket": [org_ticket],
        "org_binding": [org_binding],
    }
    in_org = {"path.org": _drawn("org")}
    in_scratch = {"path.org": _drawn("scratch_org")}
    as_scratch = {"Authorization": f"Bearer {scratch.session}"}
    operations: dict[str, dict[str, Any]] = {
        "GET /v1/orgs/{org}/members": {"parameters": in_org},
        "POST /v1/orgs/{org}/invitations": {"parameters": in_org},
        # The owner's own invitation: accepting it reaches the membership check (409, "already a member").
        "POST /v1/invitations/{id}/accept": {
            "parameters": {"path.id": _drawn("invitation"), "body.code": _drawn("code")}
        },
        "PATCH /v1/orgs/{org}/members/{user_id}": {
            "headers": as_scratch,
            "parameters": {**in_scratch, "path.user_id": _drawn("member")},
        },
        "DELETE /v1/orgs/{org}/members/{user_id}": {
            "headers": as_scratch,
            "parameters": {**in_scratch, "path.user_id": _drawn("leaving")},
        },
        "POST /v1/tokens": {"parameters": {"body.org": _drawn("org")}},
        "POST /v1/tokens/{id}/revoke": {"headers": as_scratch, "parameters": {"path.id": _drawn("token")}},
        "POST /v1/orgs/{org}/workload-issuers": {"parameters": in_org},
        "GET /v1/orgs/{org}/workload-issuers": {"parameters": in_org},
        "DELETE /v1/orgs/{org}/workload-issuers/{id}": {
            "headers": as_scratch,
            "parameters": {**in_scratch, "path.id": _drawn("issuer")},
        },
        "POST /v1/orgs/{org}/workloads": {"parameters": {**in_org, "body.issuer": _drawn("issuer_url")}},
        "GET /v1/orgs/{org}/workloads": {"parameters": in_org},
        "GET /v1/orgs/{org}/workloads/{binding}": {"parameters": {**in_org, "path.binding": _drawn("binding")}},
        "DELETE /v1/orgs/{org}/workloads/{binding}": {
            "headers": as_scratch,
            "parameters": {**in_scratch, "path.binding": _drawn("binding_removed")},
        },
        "POST /login/.well-known/macfly/3p": {
            "parameters": {"body.ticket": _drawn("login_ticket"), "body.binding_id": _drawn("login_binding")}
        },
        "POST /org/.well-known/macfly/3p": {
            "parameters": {"body.ticket": _drawn("org_ticket"), "body.binding_id": _drawn("org_binding")}
        },
    }
    return operations, dictionaries


async def test_the_authority_document_holds_against_the_authority(world: EnrolledOrg, tmp_path: Path) -> None:
    """Every operation of the authority's document, with the world's org, members, invitation, token, workload
    issuers and bindings, and real tickets to discharge, drawn for most cases (the rest are generated), so the
    operations' logic runs rather than a 404.

    ``POST /v1/invitations/{id}/accept`` cannot succeed more than once, so its cases use the owner's own invitation,
    which reaches the membership check (409 "already a member"): schemathesis warns that no case of it got a 2xx
    (a warning, not a failure).

    One setting is the feed's own: ``GET /v1/revocations/feed`` is a long poll that holds the request up to the
    ``wait`` it is given (at most 25 s, :data:`vault.authority.revocation_feed.MAX_FEED_WAIT`, the stores' poll),
    so its response-time limit is that plus a margin instead of schemathesis's 10 s.
    """
    h = world.h
    spec = (await h.authority("GET", "/openapi.json")).body
    # Logging out gets a session of its own, so the other operations keep a live one.
    spare = await h.login(world.owner.email, world.owner.id)
    operations, dictionaries = await _authority_data(world)
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            label = f"{method.upper()} {path}"
            schemes = {name for requirement in operation.get("security") or [] for name in requirement}
            if "feed" in schemes:
                headers = {"Authorization": f"Bearer {h.feed_token}"}
                checks = {"max_response_time": MAX_FEED_WAIT + 5}
                operations.setdefault(label, {}).update(headers=headers, checks=checks)
            elif "bundle" in schemes and "session" not in schemes:
                operations.setdefault(label, {})["headers"] = {"Authorization": f"Bearer {world.auth}"}
    operations.setdefault("DELETE /v1/sessions/current", {})["headers"] = {"Authorization": f"Bearer {spare.session}"}
    default = {"Authorization": f"Bearer {world.owner.session}"}
    config = schemathesis_config(default, operations=operations, dictionaries=dictionaries)
    status, report = await asyncio.to_thread(run_schemathesis, tmp_path, spec, h.authority_url, config)
    assert status == 0, report
