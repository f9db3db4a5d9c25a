"""The pure parts of workload identity: claim rules and their globs, labels, the key cache's bounds, the console."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.support.oidc_issuer import new_key, public_jwk, running_issuer
from vault.authority.jwks import JwksCache
from vault.authority.workload_jwt import JwtLimits, has_audience, parse_unverified, verify_jwt
from vault.authority.workload_records import WorkloadIssuer
from vault.authority.workload_rules import (
    check_claim_rules,
    claim_value,
    mismatched_claims,
    pattern_matches,
    workload_label,
)
from vault.errors import BadRequest, InvalidToken, Unavailable
from vault.web.console.lineage import lineage_graph


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("repo:acme/api:ref:refs/heads/main", "repo:acme/api:ref:refs/heads/main", True),
        ("repo:acme/api:ref:refs/heads/main", "repo:acme/api:ref:refs/heads/main2", False),
        ("repo:acme/*", "repo:acme/api:ref:refs/heads/main", True),
        ("repo:acme/*", "repo:acme-evil/api", False),
        ("repo:acme/*", "repo:acme/", True),  # '*' matches nothing too
        ("repo:acme/*", "xrepo:acme/api", False),  # anchored at the start
        ("*:ref:refs/heads/main", "repo:acme/api:ref:refs/heads/main-evil", False),  # and at the end
        ("a*b*c", "abc", True),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "acb", False),
        ("prod-?", "prod-1", False),  # '?' is not special
        ("prod-?", "prod-?", True),
        ("[ab]", "a", False),  # nor are brackets
        ("api.*", "apiX", False),  # a dot is a dot
        ("*", "", False),  # an empty claim never matches
        ("x", "X", False),  # case matters
        ("line*", "line\nbreak", True),  # '*' spans any character
    ],
)
def test_glob_patterns(pattern: str, value: str, matches: bool) -> None:
    assert pattern_matches(pattern, value) is matches


def test_claims_are_read_top_level_first_then_as_a_path() -> None:
    claims: dict[str, Any] = {
        "kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "api"}},
        "kubernetes.io/serviceaccount/namespace": "legacy",
    }
    assert claim_value(claims, "kubernetes.io/namespace") == "prod"
    assert claim_value(claims, "kubernetes.io/serviceaccount/name") == "api"
    assert claim_value(claims, "kubernetes.io/serviceaccount/namespace") == "legacy"
    assert claim_value(claims, "kubernetes.io/pod/name") is None


def test_only_non_empty_strings_match() -> None:
    rules = {"sub": "x*", "n": "1", "l": "a*", "o": "*b*", "missing": "m*"}
    claims = {"sub": "xy", "n": 1, "l": ["ab"], "o": {"b": "b"}}
    assert mismatched_claims(rules, claims) == ["n", "l", "o", "missing"]


@pytest.mark.parametrize(
    "rules",
    [
        {},
        {"repository": "acme/api"},  # no sub
        {"sub": "*"},
        {"sub": "**"},
        {"sub": "x", "iss": "y"},  # checked by the authority itself
        {"sub": "x", "aud": "y"},
        {"sub": ""},
        {"sub": 1},
        {"sub": "x\ny"},
        {"": "x", "sub": "x"},
        {f"c{i}": "x" for i in range(40)} | {"sub": "x"},
    ],
)
def test_malformed_claim_rules_are_refused(rules: Any) -> None:
    with pytest.raises(BadRequest):
        check_claim_rules(rules)


def test_labels_name_the_workload() -> None:
    assert workload_label(
        "https://k8s", {"kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "api"}}}
    ) == ("kubernetes: ns/prod sa/api")
    github = {"repository": "acme/api", "ref": "refs/heads/main", "job_workflow_ref": "x"}
    assert workload_label("https://token.actions.githubusercontent.com", github) == "github: acme/api@refs/heads/main"
    assert workload_label("https://gitlab.example.com/x", {"sub": "project_path:a/b\x1b"}) == (
        "gitlab.example.com: project_path:a/b?"
    )
    assert len(workload_label("https://x", {"sub": "s" * 1000})) == 200


# -- the key cache -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document: Mapping[str, Any] | None = document
        self.calls = 0

    async def fetch(self, issuer: WorkloadIssuer) -> Mapping[str, Any]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.document is None:
            raise Unavailable("down")
        return self.document


ISSUER = WorkloadIssuer("00000000-0000-4000-8000-000000000001", 1, "https://issuer", None, None, ("RS256",))


def jwks(*kids: str) -> dict[str, Any]:
    key = new_key("ES256")
    return {"keys": [public_jwk(kid, "ES256", key) for kid in kids]}


async def test_unknown_kids_refetch_at_most_once_per_interval() -> None:
    clock, fetcher = Clock(), Fetcher(jwks("a"))
    cache = JwksCache(fetcher, max_age=300, refetch_interval=30, monotonic=clock)
    assert (await cache.key(ISSUER, "a", "ES256")).key_id == "a"
    results = await asyncio.gather(
        *(cache.key(ISSUER, f"bogus{i}", "ES256") for i in range(100)), return_exceptions=True
    )
    assert all(isinstance(r, InvalidToken) for r in results)
    assert fetcher.calls == 1  # fetched at 1000; the bogus kids came within the interval
    clock.now += 31
    fetcher.document = jwks("a", "b")
    assert (await cache.key(ISSUER, "b", "ES256")).key_id == "b"  # a new kid after the interval: fetched
    assert fetcher.calls == 2


async def test_concurrent_misses_share_one_fetch() -> None:
    clock, fetcher = Clock(), Fetcher(jwks("a"))
    cache = JwksCache(fetcher, monotonic=clock)
    keys = await asyncio.gather(*(cache.key(ISSUER, "a", "ES256") for _ in range(20)))
    assert {k.key_id for k in keys} == {"a"} and fetcher.calls == 1


async def test_stale_keys_are_never_used_when_the_issuer_is_down() -> None:
    clock, fetcher = Clock(), Fetcher(jwks("a"))
    cache = JwksCache(fetcher, max_age=300, refetch_interval=30, monotonic=clock)
    await cache.key(ISSUER, "a", "ES256")
    fetcher.document = None
    clock.now += 100
    await cache.key(ISSUER, "a", "ES256")  # fresh: no fetch
    assert fetcher.calls == 1
    clock.now += 201  # past max_age
    with pytest.raises(Unavailable):
        await cache.key(ISSUER, "a", "ES256")
    with pytest.raises(Unavailable):  # and the failure counts for the refetch bound: no second fetch
        await cache.key(ISSUER, "a", "ES256")
    assert fetcher.calls == 2


async def test_a_key_for_another_algorithm_is_refused() -> None:
    cache = JwksCache(Fetcher(jwks("a")), monotonic=Clock())
    with pytest.raises(InvalidToken, match="not for RS256"):
        await cache.key(ISSUER, "a", "RS256")


async def test_the_cache_holds_a_bounded_number_of_issuers() -> None:
    clock, fetcher = Clock(), Fetcher(jwks("a"))
    cache = JwksCache(fetcher, max_issuers=3, monotonic=clock)
    for i in range(10):
        issuer = WorkloadIssuer(f"00000000-0000-4000-8000-{i:012d}", 1, f"https://i{i}", None, None, ("ES256",))
        await cache.key(issuer, "a", "ES256")
    assert len(cache._entries) == 3


# -- the console -------------------------------------------------------------------------


def test_the_console_lineage_draws_the_workload() -> None:
    binding = "6f1f6c1e-8a51-4d1e-9d61-2a0f4f3b9c11"
    event = {
        "actor": "workload:kubernetes: ns/prod sa/api",
        "lineage": [binding],
        "token_id": "b3c8e0d6-0000-5000-8000-000000000000",
        "outcome": "ok",
        "action": "secrets.read",
        "vault": "prod",
        "secret": "db/url",
        "detail": {"workload": {"issuer": "https://k8s", "subject": "system:serviceaccount:prod:api"}},
    }
    graph = lineage_graph([event], revoked={binding})
    [workload] = graph.of_kind("workload")
    [bound] = graph.of_kind("binding")
    assert workload.label == "kubernetes: ns/prod sa/api"
    assert workload.detail == "system:serviceaccount:prod:api from https://k8s"
    assert bound.token_id == binding and bound.revoked == "revoked"
    assert not graph.of_kind("user") and not graph.of_kind("permission")
    assert {(e.source.kind, e.target.kind, e.label) for e in graph.edges} == {
        ("workload", "binding", "bound"),
        ("binding", "store", "discharged"),
        ("store", "scope", "narrowed"),
    }


def test_an_unreadable_jwks_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    from vault.errors import ConfigError
    from vault.web.authority.jwks_fetch import HttpsKeySetFetcher

    with pytest.raises(ConfigError, match="CVAULT_WORKLOAD_JWKS_CA_FILE"):
        HttpsKeySetFetcher(tmp_path / "missing.pem")


async def test_a_key_set_that_arrives_in_pieces_is_read_whole(tmp_path: Path) -> None:
    from vault.web.authority.jwks_fetch import HttpsKeySetFetcher

    async with running_issuer(tmp_path) as oidc:
        oidc.chunked = True
        fetcher = HttpsKeySetFetcher(oidc.ca_file)
        try:
            issuer = WorkloadIssuer("00000000-0000-4000-8000-000000000002", 1, oidc.url, None, None, ("RS256",))
            document = await fetcher.fetch(issuer)
        finally:
            await fetcher.close()
        assert document == oidc.jwks()


# -- the JWT's time claims ---------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 1e300, "1000000"])
def test_time_claims_that_are_not_finite_numbers_are_refused(claim: str, value: Any) -> None:
    # JSON as Python reads it allows NaN and Infinity: a signed token carrying them is refused, not a 500.
    key, now = new_key("ES256"), 1_000_000
    claims = {"iss": "https://issuer", "sub": "s", "aud": "a", "iat": now, "exp": now + 60, claim: value}
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k"})
    verifier = jwt.PyJWK(public_jwk("k", "ES256", key), "ES256")
    with pytest.raises(InvalidToken, match=claim):
        verify_jwt(parse_unverified(token), verifier, algorithms=("ES256",), now=now, limits=JwtLimits())


def test_an_algorithm_the_issuer_does_not_allow_is_refused_even_with_a_matching_key() -> None:
    key, now = new_key("RS256"), 1_000_000
    claims = {"iss": "https://issuer", "sub": "s", "aud": "a", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k"})
    verifier = jwt.PyJWK(public_jwk("k", "RS256", key), "RS256")
    assert verify_jwt(parse_unverified(token), verifier, algorithms=("RS256",), now=now, limits=JwtLimits())
    with pytest.raises(InvalidToken, match="not allowed for this issuer"):
        verify_jwt(parse_unverified(token), verifier, algorithms=("ES256",), now=now, limits=JwtLimits())


def test_the_audience_is_one_string_or_one_of_a_list_of_strings() -> None:
    assert has_audience({"aud": "https://a"}, "https://a")
    assert has_audience({"aud": ["https://b", "https://a"]}, "https://a")
    for aud in ("https://a/", ["https://b"], [], [["https://a"]], {"https://a": 1}, None, 1):
        assert not has_audience({"aud": aud}, "https://a"), aud
