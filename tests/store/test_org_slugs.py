"""An org's slug at the store is the one the authority attests, and the Vault API does not enumerate slugs.

The org discharge carries an ``OrgSlug`` attestation; enrolment records it and refuses any other
slug, so an owner cannot enrol (or re-enrol) under another org's slug. The Vault API's mount
question and KV routes give one answer to a caller without a token of the org, whether or not the
slug is enrolled (docs/vault-compat.md, "Mounts").
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.enrolled_org import EnrolledOrg, world_of
from tests.support.harness import Harness
from vault.macaroon import decode_token
from vault.macaroon.caveats import OrgSlug


async def _enroll(h: Harness, auth: str, org: int, body: dict[str, Any]) -> Any:
    r = await h.store("GET", f"/v1/orgs/{org}/enroll")
    assert r.status == 200, r
    bundle = await h.store_bundle(r.body["challenge"], auth)
    return await h.store("POST", f"/v1/orgs/{org}/enroll", bundle, body)


async def test_an_org_cannot_enrol_under_another_orgs_slug(harness: Harness) -> None:
    h = harness
    acme = await world_of(h)  # enrolled as "acme"
    mallory = await h.new_user("mallory@example.com")
    evil = await h.create_org(mallory, "evil")
    evil_auth = await h.authority_bundle(mallory, evil)

    # The org discharge attests the slug the authority knows.
    r = await h.store("GET", f"/v1/orgs/{evil}/enroll")
    discharge = await h.org_discharge(r.body["challenge"], evil_auth)
    assert discharge.status == 201, discharge
    assert [c.slug for c in decode_token(discharge.body["discharge"]).unverified_caveats if isinstance(c, OrgSlug)] == [
        "evil"
    ]

    for slug in ("acme", "globex"):  # someone else's slug, or one nobody has
        refused = await _enroll(h, evil_auth, evil, {"slug": slug})
        assert refused.status == 403 and "'evil'" in refused.body["error"]["message"], refused
    assert (await _enroll(h, evil_auth, evil, {})).status == 201  # the slug is the attested one
    assert (await _enroll(h, evil_auth, evil, {"slug": "evil"})).status == 201
    # Re-enrolling acme under another slug is refused too; acme keeps its mount.
    assert (await _enroll(h, acme.auth, acme.org, {"slug": "evil"})).status == 403
    status, _ = await _vault(acme, "GET", "/v1/sys/internal/ui/mounts/acme/prod", acme.bundle)
    assert status == 200
    status, _ = await _vault(acme, "GET", "/v1/sys/internal/ui/mounts/evil/prod", acme.bundle)
    assert status == 403


async def _vault(w: EnrolledOrg, method: str, path: str, token: str | None) -> tuple[int, Any]:
    headers = {"X-Vault-Token": token} if token else {}
    async with w.h.http.request(method, w.h.store_url + "/vault" + path, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_without_the_orgs_token_the_vault_api_does_not_tell_enrolled_slugs_apart(harness: Harness) -> None:
    acme = await world_of(harness)
    other = EnrolledOrg(harness, *await harness.enrolled_vault("other@example.com", "other"))
    cases = [
        (path, token)
        for path in ("/v1/sys/internal/ui/mounts/{}/prod", "/v1/sys/mounts-all/{}/prod", "/v1/{}/prod/data/db/url")
        for token in (None, other.bundle, "cv1_garbage")
    ]
    # Asked at once: the store reloads its slug table at most once a second on a miss, and concurrent misses share
    # that one reload, where one question after another would wait a second each.
    answers = await asyncio.gather(
        *(_vault(acme, "GET", path.format(slug), token) for path, token in cases for slug in ("acme", "nosuchorg"))
    )
    for (path, token), enrolled, unknown in zip(cases, answers[0::2], answers[1::2], strict=True):
        assert enrolled == unknown == (403, {"errors": ["permission denied"]}), (path, token, enrolled, unknown)
    status, body = await _vault(acme, "GET", "/v1/sys/internal/ui/mounts/acme/prod", acme.bundle)
    assert status == 200 and body["data"]["path"] == "acme/prod/"


async def test_a_mount_question_under_another_orgs_slug_reads_the_tokens_own_vault(harness: Harness) -> None:
    """With the one-segment mount (``<vault>`` of the token's org), a preflight whose first segment is not the
    token's org's slug is read as that org's own vault: another org's slug means nothing there."""
    acme = await world_of(harness)
    other = EnrolledOrg(harness, *await harness.enrolled_vault("other@example.com", "other", vault="acme"))
    status, body = await _vault(acme, "GET", "/v1/sys/internal/ui/mounts/prod/db/url", acme.bundle)
    assert status == 200 and body["data"]["path"] == "prod/"
    for token in (None, other.bundle):  # no vault "prod" in other's org, no token at all
        assert await _vault(acme, "GET", "/v1/sys/internal/ui/mounts/prod/db/url", token) == (
            403,
            {"errors": ["permission denied"]},
        )
    # "acme" is acme's slug and other's vault: other's token is answered about its own vault, not acme's mount.
    status, body = await _vault(acme, "GET", "/v1/sys/internal/ui/mounts/acme/prod", other.bundle)
    assert status == 200 and body["data"]["path"] == "acme/", body
