"""Neither enrolment nor strip gives a caller more than it holds.

1. Enrolment mints a root store token (``rwcdCa``): the org discharge must allow all of it,
   so an owner's bundle narrowed to ``rC`` cannot turn into a token that writes.
2. Strip drops only the login 3P caveat and the authority's own issuance window; every
   caveat the holder appended, a ``ValidityWindow`` included, stays on the service token.
"""

from __future__ import annotations

import time

from tests.support.audit_rows import audit_since
from tests.support.harness import Harness
from vault.macaroon import Macaroon, decode_token, encode_bundle, encode_token
from vault.macaroon.caveats import ClientCIDR, ValidityWindow
from vault.storage.pool import Pool


async def test_enrolment_with_a_narrowed_owner_bundle_is_refused(harness: Harness, pool: Pool) -> None:
    h = harness
    owner = await h.new_user("owner@example.com")
    org = await h.create_org(owner, "acme")
    narrowed = await h.authority_bundle(owner, org, mask="rC")
    r = await h.store("GET", f"/v1/orgs/{org}/enroll")
    bundle = await h.store_bundle(r.body["challenge"], narrowed)
    r = await h.store("POST", f"/v1/orgs/{org}/enroll", bundle, {"slug": "acme"})
    assert r.status == 403 and r.code == "unauthorized", r
    assert "rwcdCa" in r.body["error"]["message"]
    assert await pool.fetchval("SELECT count(*) FROM store.tokens") == 0
    events = [(e["action"], e["outcome"]) for e in await audit_since(pool, 0)]
    assert events == [("enroll", "denied")]
    # The owner's unrestricted bundle still enrols.
    root = await h.enroll(await h.authority_bundle(owner, org), org, "acme")
    assert decode_token(root).token_id


async def test_a_narrowed_owner_bundle_cannot_enrol_into_writing(harness: Harness) -> None:
    # The attack as filed: rC -> root token (rwcdCa) -> writes with an operator's discharge.
    h = harness
    owner = await h.new_user("owner@example.com")
    org = await h.create_org(owner, "acme")
    await h.enroll(await h.authority_bundle(owner, org), org, "acme")
    narrowed = await h.authority_bundle(owner, org, mask="rC")
    r = await h.store("GET", f"/v1/orgs/{org}/enroll")
    bundle = await h.store_bundle(r.body["challenge"], narrowed)
    r = await h.store("POST", f"/v1/orgs/{org}/enroll", bundle, {"slug": "acme"})
    assert r.status == 403, r


async def _permission_bundle(h: Harness, session: str, org: int, extra: list[object]) -> tuple[Macaroon, str]:
    r = await h.authority("POST", "/v1/tokens", session, {"org": org})
    assert r.status == 201, r
    token = decode_token(r.body["token"]).attenuate(extra)  # type: ignore[arg-type]
    d = await h.discharge(f"{h.authority_url}/login", token, session)
    assert d.status == 201, d
    return token, encode_bundle([token, decode_token(d.body["discharge"])])


async def test_strip_keeps_a_validity_window_the_holder_appended(harness: Harness) -> None:
    h = harness
    owner = await h.new_user("owner@example.com")
    org = await h.create_org(owner, "acme")
    root = await h.enroll(await h.authority_bundle(owner, org), org, "acme")
    now = int(time.time())
    window = ValidityWindow(now - 5, now + 10)
    _token, bundle = await _permission_bundle(h, owner.session, org, [window])
    r = await h.authority("POST", "/v1/tokens/strip", bundle)
    assert r.status == 201, r
    service = decode_token(r.body["token"])
    assert [c for c in service.unverified_caveats if isinstance(c, ValidityWindow)] == [window]
    # Within the window the service token gets an org discharge; after it, never again.
    assert (await h.org_discharge(root, encode_token(service))).status == 201
    h.authority_clock.offset = 20
    r = await h.org_discharge(root, encode_token(service))
    assert r.status == 403, r


async def test_strip_drops_the_issuance_window_and_the_login_caveat_only(harness: Harness) -> None:
    h = harness
    owner = await h.new_user("owner@example.com")
    org = await h.create_org(owner, "acme")
    cidr = ClientCIDR(("127.0.0.0/8",))
    token, bundle = await _permission_bundle(h, owner.session, org, [cidr])
    r = await h.authority("POST", "/v1/tokens/strip", bundle)
    assert r.status == 201, r
    service = decode_token(r.body["token"])
    kept = [c for c in token.unverified_caveats if type(c).__name__ not in ("ValidityWindow", "ThirdParty")]
    assert list(service.unverified_caveats) == kept
    assert cidr in service.unverified_caveats


async def test_enrolling_again_with_a_control_only_store_token_is_refused(harness: Harness) -> None:
    # An org store token is accepted by the enrol route too; its own mask counts in full.
    h = harness
    owner = await h.new_user("owner@example.com")
    org = await h.create_org(owner, "acme")
    auth = await h.authority_bundle(owner, org)
    root = await h.enroll(auth, org, "acme")
    control_only = await h.mint(await h.store_bundle(root, auth), org, mask="C")
    r = await h.store("POST", f"/v1/orgs/{org}/enroll", await h.store_bundle(control_only, auth), {"slug": "acme"})
    assert r.status == 403 and r.code == "unauthorized", r
