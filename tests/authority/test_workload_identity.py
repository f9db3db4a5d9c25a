"""Workload identity (docs/workload-identity.md): a platform-signed JWT discharges the org caveat.

Real PostgreSQL, both services over real HTTP, and a real OIDC issuer serving discovery and JWKS over TLS
(``tests/support/oidc_issuer.py``). Every refusal the issue lists is its own test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestServer

from tests.support.enrolled_org import EnrolledOrg, world_of
from tests.support.harness import Harness, Reply, running_services
from tests.support.oidc_issuer import OidcIssuer, running_issuer
from vault.crypto.passwords import MINIMUM
from vault.macaroon import decode_token, encode_bundle
from vault.macaroon.caveats import Organization, ValidityWindow, Vaults
from vault.macaroon.cvault_caveats import WorkloadIdentity
from vault.storage.pool import Pool
from vault.web.authority import create_authority_app
from vault.web.authority.services import SERVICES_KEY as AUTHORITY_SERVICES

REFUSED_WITHIN = 5.0  # functional bound, as in test_store_revocation_feed.py; the figure is in the docs


@dataclass
class Setup:
    h: Harness
    world: EnrolledOrg
    issuer: OidcIssuer
    binding: dict[str, Any]

    @property
    def audience(self) -> str:
        return self.h.authority_url


async def add_issuer(h: Harness, credential: str, org: int, issuer: str, **extra: Any) -> Reply:
    return await h.authority("POST", f"/v1/orgs/{org}/workload-issuers", credential, {"issuer": issuer, **extra})


async def bind(h: Harness, credential: str, org: int, **body: Any) -> Reply:
    return await h.authority("POST", f"/v1/orgs/{org}/workloads", credential, body)


async def workload_discharge(h: Harness, store_token: str, token: str, **extra: Any) -> Reply:
    """Ask the org discharger to discharge ``store_token``'s org caveat with the workload JWT ``token``."""
    t = decode_token(store_token)
    [caveat] = t.third_party_tickets(h.org_location)
    body = {
        "ticket": base64.b64encode(caveat.ticket).decode(),
        "binding_id": base64.b64encode(t.binding_id()).decode(),
        **extra,
    }
    return await h.authority("POST", "/org/.well-known/macfly/3p", token, body)


async def bundle_for(s: Setup, token: str) -> str:
    r = await workload_discharge(s.h, s.world.root, token)
    assert r.status == 201, r
    return encode_bundle([decode_token(s.world.root), decode_token(r.body["discharge"])])


async def start(h: Harness, issuer: OidcIssuer, **binding: Any) -> Setup:
    """Org ``acme`` enrolled with vault ``prod`` holding ``db/url``; ``issuer`` trusted; one binding."""
    world = await world_of(h)
    r = await h.store("PUT", world.secret("db/url"), world.bundle, {"value": "postgres://prod"})
    assert r.status == 200, r
    r = await add_issuer(h, world.owner.session, world.org, issuer.url)
    assert r.status == 201, r
    body = {
        "name": "api",
        "issuer": issuer.url,
        "claims": {"sub": "system:serviceaccount:prod:api", "kubernetes.io/namespace": "prod"},
        "mask": "r",
        **binding,
    }
    r = await bind(h, world.owner.session, world.org, **body)
    assert r.status == 201, r
    return Setup(h, world, issuer, r.body)


@pytest.fixture
async def oidc(tmp_path: Path) -> AsyncIterator[OidcIssuer]:
    async with running_issuer(tmp_path) as issuer:
        yield issuer


@pytest.fixture
async def setup(database_url: str, oidc: OidcIssuer) -> AsyncIterator[Setup]:
    async with running_services(database_url, workload_jwks_ca_file=oidc.ca_file) as h:
        yield await start(h, oidc)


async def read_secret(s: Setup, bundle: str) -> Reply:
    return await s.h.store("GET", s.world.secret("db/url"), bundle)


# -- happy paths ---------------------------------------------------------------------------


async def test_a_kubernetes_token_discharges_the_org_caveat_and_reads(setup: Setup, pool: Pool) -> None:
    s = setup
    bundle = await bundle_for(s, s.issuer.kubernetes_token(s.audience))
    r = await read_secret(s, bundle)
    assert r.status == 200 and r.body["value"] == "postgres://prod", r
    # The binding's mask holds: reading only.
    r = await s.h.store("PUT", s.world.secret("db/url"), bundle, {"value": "x"})
    assert r.status == 403, r


async def test_the_discharge_names_the_workload_and_never_outlives_the_jwt(setup: Setup) -> None:
    s = setup
    token = s.issuer.kubernetes_token(s.audience, lifetime=100)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    r = await workload_discharge(s.h, s.world.root, token)
    assert r.status == 201, r
    discharge = decode_token(r.body["discharge"])
    [window] = [c for c in discharge.unverified_caveats if isinstance(c, ValidityWindow)]
    assert window.not_after == exp  # the binding's ttl (300 s) is longer than the JWT's remaining life
    [org] = [c for c in discharge.unverified_caveats if isinstance(c, Organization)]
    assert org.id == s.world.org and org.mask == 1  # "r"
    [who] = [c for c in discharge.unverified_caveats if isinstance(c, WorkloadIdentity)]
    assert who == WorkloadIdentity(
        s.issuer.url, "system:serviceaccount:prod:api", s.binding["id"], "kubernetes: ns/prod sa/api"
    )


async def test_the_store_audit_event_names_the_workload(setup: Setup, pool: Pool) -> None:
    s = setup
    bundle = await bundle_for(s, s.issuer.kubernetes_token(s.audience))
    assert (await read_secret(s, bundle)).status == 200
    row = await pool.fetchrow(
        "SELECT actor, lineage, detail FROM store.audit_events WHERE action = 'secrets.read' ORDER BY seq DESC LIMIT 1"
    )
    assert row["actor"] == "workload:kubernetes: ns/prod sa/api"
    assert list(row["lineage"]) == [s.binding["id"]]
    detail = row["detail"] if isinstance(row["detail"], dict) else json.loads(row["detail"])
    assert detail["workload"] == {
        "issuer": s.issuer.url,
        "subject": "system:serviceaccount:prod:api",
        "binding": s.binding["id"],
        "label": "kubernetes: ns/prod sa/api",
    }
    row = await pool.fetchrow(
        "SELECT outcome, detail FROM authority.audit_events WHERE action = 'discharge.workload' ORDER BY seq DESC"
    )
    assert row["outcome"] == "ok"


async def test_a_github_actions_token_discharges_with_a_glob_rule(setup: Setup) -> None:
    s = setup
    r = await bind(
        s.h,
        s.world.owner.session,
        s.world.org,
        name="deploy",
        issuer=s.issuer.url,
        claims={"sub": "repo:acme/api:*", "repository": "acme/api", "ref": "refs/heads/main"},
        mask="r",
        vaults=["prod"],
    )
    assert r.status == 201, r
    token = s.issuer.github_token(s.audience)
    r = await workload_discharge(s.h, s.world.root, token)
    assert r.status == 201, r
    discharge = decode_token(r.body["discharge"])
    [who] = [c for c in discharge.unverified_caveats if isinstance(c, WorkloadIdentity)]
    assert who.label == "github: acme/api@refs/heads/main" and who.subject == "repo:acme/api:ref:refs/heads/main"
    assert [c for c in discharge.unverified_caveats if isinstance(c, Vaults)] == [Vaults((("prod", 1),))]
    bundle = encode_bundle([decode_token(s.world.root), discharge])
    assert (await read_secret(s, bundle)).status == 200


async def test_keys_rotated_at_the_issuer_are_followed_without_a_restart(database_url: str, oidc: OidcIssuer) -> None:
    async with running_services(
        database_url, workload_jwks_ca_file=oidc.ca_file, workload_jwks_refetch_interval=1
    ) as h:
        s = await start(h, oidc)
        await bundle_for(s, s.issuer.kubernetes_token(s.audience))
        old_token = s.issuer.kubernetes_token(s.audience)
        s.issuer.rotate("ES256")
        new_token = s.issuer.kubernetes_token(s.audience)
        # The refetch bound (1 s here) holds for a rotation too: wait it out, then the new kid is fetched.
        await asyncio.sleep(1.1)
        r = await workload_discharge(h, s.world.root, new_token)
        assert r.status == 201, r
        # The old key is gone from the set the authority now holds.
        r = await workload_discharge(h, s.world.root, old_token)
        assert r.status == 401 and "publishes no key" in message(r), r
        s.issuer.rotate("EdDSA")
        await asyncio.sleep(1.1)
        assert (await workload_discharge(h, s.world.root, s.issuer.kubernetes_token(s.audience))).status == 201


# -- refusals ------------------------------------------------------------------------------


def message(r: Reply) -> str:
    text: str = r.body["error"]["message"]
    return text


async def test_a_jwt_of_an_issuer_the_org_does_not_trust_is_refused(setup: Setup, tmp_path: Path) -> None:
    s = setup
    claims = s.issuer.claims(s.audience, "system:serviceaccount:prod:api")
    claims["iss"] = "https://evil.example.com"
    r = await workload_discharge(s.h, s.world.root, s.issuer.sign(claims))
    assert r.status == 403 and "trusts no workload issuer" in message(r), r


async def test_a_jwt_for_another_audience_is_refused(setup: Setup) -> None:
    s = setup
    r = await workload_discharge(s.h, s.world.root, s.issuer.kubernetes_token("https://kubernetes.default.svc"))
    assert r.status == 403 and "none of" in message(r), r
    r = await workload_discharge(
        s.h, s.world.root, s.issuer.kubernetes_token("https://kubernetes.default.svc"), binding="api"
    )
    assert r.status == 403 and "audience" in message(r), r


async def test_an_expired_jwt_is_refused(setup: Setup) -> None:
    s = setup
    claims = s.issuer.claims(s.audience, "system:serviceaccount:prod:api", now=time.time() - 1000)
    claims["kubernetes.io"] = {"namespace": "prod"}
    r = await workload_discharge(s.h, s.world.root, s.issuer.sign(claims))
    assert r.status == 401 and "expired" in message(r), r


async def test_a_jwt_within_the_skew_of_its_expiry_gets_no_discharge_past_it(setup: Setup) -> None:
    s = setup
    claims = s.issuer.claims(s.audience, "system:serviceaccount:prod:api", lifetime=600, now=time.time() - 610)
    claims["kubernetes.io"] = {"namespace": "prod"}
    r = await workload_discharge(s.h, s.world.root, s.issuer.sign(claims))
    assert r.status == 401 and "expires now" in message(r), r


async def test_a_jwt_not_yet_valid_is_refused(setup: Setup) -> None:
    s = setup
    claims = s.issuer.claims(s.audience, "system:serviceaccount:prod:api")
    claims["nbf"] = claims["iat"] + 600
    claims["kubernetes.io"] = {"namespace": "prod"}
    r = await workload_discharge(s.h, s.world.root, s.issuer.sign(claims))
    assert r.status == 401 and "not valid for another" in message(r), r


async def test_a_jwt_valid_for_longer_than_the_maximum_is_refused(setup: Setup) -> None:
    s = setup
    r = await workload_discharge(s.h, s.world.root, s.issuer.kubernetes_token(s.audience, lifetime=3601))
    assert r.status == 401 and "more than the 3600 s" in message(r), r


async def test_alg_none_is_refused(setup: Setup) -> None:
    s = setup
    claims = s.issuer.claims(s.audience, "system:serviceaccount:prod:api")
    claims["kubernetes.io"] = {"namespace": "prod"}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": s.issuer.current})
    r = await workload_discharge(s.h, s.world.root, unsigned)
    assert r.status == 401 and "'none' is not accepted" in message(r), r


async def test_hs256_signed_with_the_issuers_public_key_is_refused(setup: Setup) -> None:
    s = setup
    claims = s.issuer.claims(s.audience, "system:serviceaccount:prod:api")
    claims["kubernetes.io"] = {"namespace": "prod"}
    _, key = s.issuer.keys[s.issuer.current]
    from cryptography.hazmat.primitives import serialization

    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # PyJWT refuses to sign with a PEM public key as an HMAC secret; sign by hand, as an attacker would.
    header = {"alg": "HS256", "typ": "JWT", "kid": s.issuer.current}
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    r = await workload_discharge(s.h, s.world.root, signing_input + "." + b64(signature))
    assert r.status == 401 and "'HS256' is not accepted" in message(r), r


async def test_an_unknown_kid_is_refused(setup: Setup) -> None:
    s = setup
    await bundle_for(s, s.issuer.kubernetes_token(s.audience))
    claims = s.issuer.claims(s.audience, "system:serviceaccount:prod:api")
    r = await workload_discharge(s.h, s.world.root, s.issuer.sign(claims, headers={"kid": "made-up"}))
    assert r.status == 401 and "publishes no key" in message(r), r


async def test_a_flood_of_unknown_kids_costs_the_issuer_one_fetch_per_interval(
    database_url: str, oidc: OidcIssuer
) -> None:
    async with running_services(
        database_url, workload_jwks_ca_file=oidc.ca_file, workload_jwks_refetch_interval=3600
    ) as h:
        s = await start(h, oidc)
        await bundle_for(s, s.issuer.kubernetes_token(s.audience))
        fetched = oidc.jwks_fetches
        claims = s.issuer.claims(s.audience, "system:serviceaccount:prod:api")
        replies = await asyncio.gather(
            *(
                workload_discharge(h, s.world.root, s.issuer.sign(claims, headers={"kid": f"bogus-{i}"}))
                for i in range(40)
            )
        )
        assert all(r.status == 401 for r in replies), replies
        # The first unknown kid may fetch once (the set was fetched just before: not even that); no more.
        assert oidc.jwks_fetches - fetched <= 1


async def test_an_unreachable_issuer_with_no_fresh_keys_fails_closed(setup: Setup) -> None:
    s = setup
    s.issuer.down = True
    r = await workload_discharge(s.h, s.world.root, s.issuer.kubernetes_token(s.audience))
    assert r.status == 503, r


async def test_a_claim_rule_mismatch_is_refused(setup: Setup) -> None:
    s = setup
    r = await workload_discharge(s.h, s.world.root, s.issuer.kubernetes_token(s.audience, namespace="staging"))
    assert r.status == 403, r
    r = await workload_discharge(
        s.h, s.world.root, s.issuer.kubernetes_token(s.audience, namespace="staging"), binding="api"
    )
    assert r.status == 403 and "'sub', 'kubernetes.io/namespace'" in message(r), r


async def test_glob_rules_do_not_match_lookalike_repositories(setup: Setup) -> None:
    s = setup
    r = await bind(
        s.h,
        s.world.owner.session,
        s.world.org,
        name="deploy",
        issuer=s.issuer.url,
        claims={"sub": "repo:acme/*:ref:refs/heads/main"},
        mask="r",
    )
    assert r.status == 201, r
    for repository in ("acme-evil/api", "acmeX/api"):
        token = s.issuer.github_token(s.audience, repository=repository)
        r = await workload_discharge(s.h, s.world.root, token, binding="deploy")
        assert r.status == 403, (repository, r)
    token = s.issuer.github_token(s.audience, repository="acme/api", ref="refs/heads/main-evil")
    assert (await workload_discharge(s.h, s.world.root, token, binding="deploy")).status == 403
    token = s.issuer.github_token(s.audience, repository="acme/web")
    assert (await workload_discharge(s.h, s.world.root, token, binding="deploy")).status == 201


async def test_a_jwt_replayed_past_its_use_bound_is_refused(database_url: str, oidc: OidcIssuer) -> None:
    async with running_services(database_url, workload_jwks_ca_file=oidc.ca_file, workload_jwt_max_uses=2) as h:
        s = await start(h, oidc)
        token = s.issuer.kubernetes_token(s.audience)
        assert (await workload_discharge(h, s.world.root, token)).status == 201
        assert (await workload_discharge(h, s.world.root, token)).status == 201
        r = await workload_discharge(h, s.world.root, token)
        assert r.status == 401 and "already used for 2 discharges" in message(r), r
        # Another JWT of the same workload is fine.
        assert (await workload_discharge(h, s.world.root, s.issuer.kubernetes_token(s.audience))).status == 201


async def test_a_jwt_without_jti_re_encoded_still_counts_as_the_same_jwt(database_url: str, oidc: OidcIssuer) -> None:
    # PyJWT accepts the signature segment with base64 padding, and an ECDSA signature (r, n - s) verifies too:
    # other texts of the same signed JWT. Without a jti, the bound counts the signed part, not the text.
    async with running_services(database_url, workload_jwks_ca_file=oidc.ca_file, workload_jwt_max_uses=1) as h:
        s = await start(h, oidc)
        token = s.issuer.kubernetes_token(s.audience)
        assert "jti" not in jwt.decode(token, options={"verify_signature": False})
        assert (await workload_discharge(h, s.world.root, token)).status == 201
        r = await workload_discharge(h, s.world.root, token + "==")
        assert r.status == 401 and "already used for 1 discharges" in message(r), r


async def test_the_use_bound_holds_across_authority_nodes(database_url: str, oidc: OidcIssuer) -> None:
    async with running_services(database_url, workload_jwks_ca_file=oidc.ca_file, workload_jwt_max_uses=3) as h:
        s = await start(h, oidc)
        token = s.issuer.sign(
            {**s.issuer.claims(s.audience, "system:serviceaccount:prod:api"), "kubernetes.io": {"namespace": "prod"}}
        )
        replies = await asyncio.gather(*(workload_discharge(h, s.world.root, token) for _ in range(8)))
        assert sorted(r.status for r in replies) == [201] * 3 + [401] * 5


async def test_a_token_from_org_as_issuer_is_refused_for_org_b(setup: Setup) -> None:
    s = setup
    h = s.h
    other = await h.new_user("b-owner@example.com")
    org_b = await h.create_org(other, "beta")
    auth_b = await h.authority_bundle(other, org_b)
    root_b = await h.enroll(auth_b, org_b, "beta")
    r = await workload_discharge(h, root_b, s.issuer.kubernetes_token(s.audience))
    assert r.status == 403 and f"organization {org_b} trusts no workload issuer" in message(r), r


async def test_another_org_trusting_the_same_issuer_url_cannot_use_up_this_orgs_jtis(
    database_url: str, oidc: OidcIssuer, tmp_path: Path
) -> None:
    # Org B's owner registers the same issuer URL with static keys of their own: JWTs they sign with a jti
    # this org's issuer will use count in org B only, not against this org's replay bound.
    async with running_services(database_url, workload_jwks_ca_file=oidc.ca_file, workload_jwt_max_uses=1) as h:
        s = await start(h, oidc)
        other = await h.new_user("b-owner@example.com")
        org_b = await h.create_org(other, "beta")
        root_b = await h.enroll(await h.authority_bundle(other, org_b), org_b, "beta")
        (tmp_path / "b").mkdir()
        async with running_issuer(tmp_path / "b") as forger:
            r = await add_issuer(h, other.session, org_b, oidc.url, jwks=forger.jwks())
            assert r.status == 201, r
            r = await bind(h, other.session, org_b, name="x", issuer=oidc.url, claims={"sub": "system:*"}, mask="r")
            assert r.status == 201, r
            claims = oidc.claims(s.audience, "system:serviceaccount:prod:api")
            claims["kubernetes.io"] = {"namespace": "prod"}
            claims["iss"] = oidc.url
            assert (await workload_discharge(h, root_b, forger.sign(claims))).status == 201
        r = await workload_discharge(h, s.world.root, oidc.sign(claims))
        assert r.status == 201, r


async def test_a_binding_mask_wider_than_the_binders_is_refused(setup: Setup) -> None:
    s = setup
    narrow = await s.h.authority_bundle(s.world.owner, s.world.org, mask="rC")
    r = await bind(s.h, narrow, s.world.org, name="wide", issuer=s.issuer.url, claims={"sub": "x"}, mask="rw")
    assert r.status == 403 and "at most 'rC'" in message(r), r
    r = await bind(s.h, narrow, s.world.org, name="fits", issuer=s.issuer.url, claims={"sub": "x"}, mask="r")
    assert r.status == 201, r


async def test_a_binding_stops_granting_when_its_binder_is_no_longer_an_owner(setup: Setup) -> None:
    s = setup
    h, org = s.h, s.world.org
    for email, leave in (("demoted@example.com", "demote"), ("removed@example.com", "remove")):
        binder = await h.add_member(s.world.owner, org, email, "owner")
        name = f"by-{leave}"
        rules = {"sub": "system:serviceaccount:prod:api"}
        r = await bind(h, binder.session, org, name=name, issuer=s.issuer.url, claims=rules, mask="r")
        assert r.status == 201, r
        token = s.issuer.kubernetes_token(s.audience)
        assert (await workload_discharge(h, s.world.root, token, binding=name)).status == 201
        if leave == "demote":
            r = await h.authority(
                "PATCH", f"/v1/orgs/{org}/members/{binder.id}", s.world.owner.session, {"role": "reader"}
            )
            assert r.status == 200, r
        else:
            await h.remove_member(s.world.owner, org, binder)
        started = time.monotonic()
        while time.monotonic() - started < REFUSED_WITHIN:
            r = await workload_discharge(h, s.world.root, s.issuer.kubernetes_token(s.audience), binding=name)
            if r.status != 201:
                break
            await asyncio.sleep(0.05)
        assert r.status == 403 and "no longer an owner" in message(r), (leave, r)
    # The bindings of the owner who stayed still grant.
    assert (
        await workload_discharge(h, s.world.root, s.issuer.kubernetes_token(s.audience), binding="api")
    ).status == 201


async def test_only_an_owner_manages_workloads(setup: Setup) -> None:
    s = setup
    reader = await s.h.add_member(s.world.owner, s.world.org, "reader@example.com", "reader")
    r = await bind(s.h, reader.session, s.world.org, name="x", issuer=s.issuer.url, claims={"sub": "x"}, mask="r")
    assert r.status == 403, r
    assert (await add_issuer(s.h, reader.session, s.world.org, "https://other.example.com")).status == 403
    assert (await s.h.authority("GET", f"/v1/orgs/{s.world.org}/workloads", reader.session)).status == 403


async def test_unbinding_is_seen_by_the_store_within_the_feed_delay(setup: Setup) -> None:
    s = setup
    bundle = await bundle_for(s, s.issuer.kubernetes_token(s.audience))
    assert (await read_secret(s, bundle)).status == 200
    r = await s.h.authority("DELETE", f"/v1/orgs/{s.world.org}/workloads/api", s.world.owner.session)
    assert r.status == 200 and r.body["revoked"] == s.binding["id"], r
    started = time.monotonic()
    while (r := await read_secret(s, bundle)).status == 200 and time.monotonic() - started < REFUSED_WITHIN:
        await asyncio.sleep(0.01)
    assert r.status == 401 and r.code == "discharge_required", r
    # And no new discharge for it.
    r = await workload_discharge(s.h, s.world.root, s.issuer.kubernetes_token(s.audience))
    assert r.status == 403, r


async def test_removing_the_issuer_revokes_its_bindings_discharges(setup: Setup) -> None:
    s = setup
    bundle = await bundle_for(s, s.issuer.kubernetes_token(s.audience))
    r = await s.h.authority(
        "DELETE", f"/v1/orgs/{s.world.org}/workload-issuers/{s.binding['issuer_id']}", s.world.owner.session
    )
    assert r.status == 200 and r.body["revoked_bindings"] == [s.binding["id"]], r
    started = time.monotonic()
    while (r := await read_secret(s, bundle)).status == 200 and time.monotonic() - started < REFUSED_WITHIN:
        await asyncio.sleep(0.01)
    assert r.status == 401 and r.code == "discharge_required", r
    r = await workload_discharge(s.h, s.world.root, s.issuer.kubernetes_token(s.audience))
    assert r.status == 403 and "trusts no workload issuer" in message(r), r


async def test_bindings_are_listed_shown_and_validated(setup: Setup) -> None:
    s = setup
    org, session = s.world.org, s.world.owner.session
    r = await s.h.authority("GET", f"/v1/orgs/{org}/workloads", session)
    assert [b["name"] for b in r.body["bindings"]] == ["api"]
    r = await s.h.authority("GET", f"/v1/orgs/{org}/workloads/api", session)
    assert r.body["claims"] == {"sub": "system:serviceaccount:prod:api", "kubernetes.io/namespace": "prod"}
    assert r.body["audience"] == s.h.authority_url and r.body["mask"] == "r"
    r = await s.h.authority("GET", f"/v1/orgs/{org}/workload-issuers", session)
    assert [i["issuer"] for i in r.body["issuers"]] == [s.issuer.url]
    for claims in ({}, {"sub": "*"}, {"repository": "acme/api"}, {"sub": "x", "aud": "y"}, {"sub": 3}):
        r = await bind(s.h, session, org, name="bad", issuer=s.issuer.url, claims=claims, mask="r")
        assert r.status == 400, (claims, r)
    assert (await bind(s.h, session, org, name="api", issuer=s.issuer.url, claims={"sub": "x"}, mask="r")).status == 409
    for issuer in ("http://plain.example.com", "https://", "not a url"):
        assert (await add_issuer(s.h, session, org, issuer)).status == 400, issuer
    r = await add_issuer(s.h, session, org, "https://k8s.example.com", algorithms=["HS256"])
    assert r.status == 400, r
    r = await add_issuer(s.h, session, org, "https://k8s.example.com", jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})
    assert r.status == 400, r
    assert (await add_issuer(s.h, session, org, s.issuer.url)).status == 409


async def test_static_keys_serve_an_issuer_the_authority_cannot_reach(setup: Setup) -> None:
    s = setup
    r = await add_issuer(s.h, s.world.owner.session, s.world.org, "https://airgapped.example.com", jwks=s.issuer.jwks())
    assert r.status == 201 and r.body["static_keys"] == 1, r
    r = await bind(
        s.h,
        s.world.owner.session,
        s.world.org,
        name="edge",
        issuer="https://airgapped.example.com",
        claims={"sub": "edge-*"},
        mask="r",
    )
    assert r.status == 201, r
    claims = s.issuer.claims(s.audience, "edge-7")
    claims["iss"] = "https://airgapped.example.com"
    fetched = s.issuer.jwks_fetches
    r = await workload_discharge(s.h, s.world.root, s.issuer.sign(claims))
    assert r.status == 201, r
    assert s.issuer.jwks_fetches == fetched


async def test_a_binding_removed_on_one_node_is_refused_by_another_that_cached_it(setup: Setup) -> None:
    s = setup
    node_b = create_authority_app(s.h.authority_config, password_cost=MINIMUM)
    async with TestServer(node_b, host="127.0.0.1") as server:
        url = str(server.make_url("/org/.well-known/macfly/3p"))

        async def discharge_at_b() -> int:
            t = decode_token(s.world.root)
            [caveat] = t.third_party_tickets(s.h.org_location)
            body = {
                "ticket": base64.b64encode(caveat.ticket).decode(),
                "binding_id": base64.b64encode(t.binding_id()).decode(),
            }
            token = s.issuer.kubernetes_token(s.audience)
            async with s.h.http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
                return resp.status

        # Node B keeps what it read for an hour: only the revocation list can stop the binding there.
        node_b[AUTHORITY_SERVICES].workload._bindings._ttl = 3600
        assert await discharge_at_b() == 201  # node B now holds the issuer's bindings in its cache
        r = await s.h.authority("DELETE", f"/v1/orgs/{s.world.org}/workloads/api", s.world.owner.session)
        assert r.status == 200, r
        started = time.monotonic()
        while (status := await discharge_at_b()) == 201 and time.monotonic() - started < REFUSED_WITHIN:
            await asyncio.sleep(0.01)
        assert status == 403


async def test_hostile_input_is_a_4xx_never_a_500(setup: Setup, pool: Pool) -> None:
    s = setup
    claims = s.issuer.claims(s.audience, "system:serviceaccount:prod:api")
    claims["iss"] = "https://evil\x00.example.com"
    r = await workload_discharge(s.h, s.world.root, s.issuer.sign(claims))
    assert r.status == 401, r
    claims = s.issuer.claims(s.audience, "system:serviceaccount:prod:api\x00")
    claims["kubernetes.io"] = {"namespace": "prod"}
    r = await workload_discharge(s.h, s.world.root, s.issuer.sign(claims))
    assert r.status == 401 and "'sub'" in message(r), r
    # A binding name is checked before it is echoed in the refusal and the audit event.
    r = await workload_discharge(s.h, s.world.root, s.issuer.kubernetes_token(s.audience), binding="x" * 100_000)
    assert r.status == 400 and len(message(r)) < 300, r
    for token in ("eyJ.x.y", "eyJhbGciOiJub25lIn0.e30.", "eyJ" + "A" * 20000 + ".a.b"):
        assert (await workload_discharge(s.h, s.world.root, token)).status in (400, 401, 413), token
    org, session = s.world.org, s.world.owner.session
    for path in ("workloads/%00", "workloads/" + "x" * 300, "workload-issuers/%00", "workload-issuers/nope"):
        method = "DELETE"
        r = await s.h.authority(method, f"/v1/orgs/{org}/{path}", session)
        assert r.status == 404, (path, r)
    assert (await s.h.authority("GET", f"/v1/orgs/{org}/workloads/%00", session)).status == 404
    r = await bind(s.h, session, org, name="x", issuer="https://\x00", claims={"sub": "x"}, mask="r")
    assert r.status in (400, 404), r
    r = await bind(s.h, session, org, name="y", issuer=s.issuer.url, claims={"sub": "x"}, mask="r", audience="a\x00")
    assert r.status == 400, r
    r = await add_issuer(s.h, session, org, "https://nul.example.com", jwks={"keys": [{"kty": "EC", "x": "\x00"}]})
    assert r.status == 400, r
    r = await s.h.store("POST", "/vault/v1/auth/jwt/login", body={"role": "acme/api\x00", "jwt": "a.b.c"})
    assert r.status == 400, r
    # The JWT goes on in a header: a control or non-ASCII character there failed the HTTP client (a 500).
    for bad in ("a.b.c\r\nX-Injected: 1", "a.b.c\x00", "a.b.\u00e9", "a.b.\ud800"):
        r = await s.h.store("POST", "/vault/v1/auth/jwt/login", body={"role": "acme/api", "jwt": bad})
        assert r.status == 400, (bad, r)
    # Every refusal left an event, and none of them is an internal error.
    internal = await pool.fetchval("SELECT count(*) FROM authority.audit_events WHERE detail->>'code' = 'internal'")
    assert internal == 0


async def test_keys_come_only_over_https_from_the_issuer_discovery_names(setup: Setup) -> None:
    s = setup
    org, session = s.world.org, s.world.owner.session
    r = await add_issuer(s.h, session, org, "https://other.example.com", jwks_url="http://other.example.com/jwks")
    assert r.status == 400, r
    # An issuer URL whose discovery document (served by our test issuer) names another issuer: no keys, 503.
    lookalike = s.issuer.url + "/"
    assert (await add_issuer(s.h, session, org, lookalike)).status == 201
    r = await bind(s.h, session, org, name="lookalike", issuer=lookalike, claims={"sub": "x"}, mask="r")
    assert r.status == 201, r
    claims = s.issuer.claims(s.audience, "x")
    claims["iss"] = lookalike
    r = await workload_discharge(s.h, s.world.root, s.issuer.sign(claims))
    assert r.status == 503 and "names another issuer" in message(r), r
