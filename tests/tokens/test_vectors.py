"""Conformance: the published ``superfly/macaroon`` vectors, read from ``../shared/vectors/``."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from vault.macaroon import Access, UnknownCaveat, decode, parse_bundle, wire
from vault.macaroon import caveat as cav
from vault.macaroon.caveats import ThirdParty
from vault.macaroon.macaroon import Macaroon
from vault.macaroon.verify import check_signature, recover_discharge_key

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "flyio-macaroon-vectors.json"


def _load() -> dict[str, Any]:
    if not VECTORS.exists():
        if os.environ.get("CVAULT_TEST_REQUIRE_VECTORS") or os.environ.get("CI"):
            pytest.fail(f"conformance vectors missing at {VECTORS}; CI must run with ../shared beside the project")
        pytest.skip(f"conformance vectors not found at {VECTORS} (../shared is absent)")
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    return _load()


def _header_tokens(header: str) -> list[Macaroon]:
    assert header.startswith("FlyV1 ")
    return list(parse_bundle(header[len("FlyV1 ") :]).tokens)


def _raw_tokens(header: str) -> list[bytes]:
    return [base64.b64decode(t[len("fm2_") :]) for t in header[len("FlyV1 ") :].split(",")]


def test_every_caveat_round_trips_byte_exact(vectors: dict[str, Any]) -> None:
    for name, b64 in vectors["caveats"].items():
        raw = base64.b64decode(b64)
        type_id, body = wire.unpack_one(raw)
        caveat = cav.from_wire(type_id, body)
        assert caveat.packed() == raw, name


def test_every_permission_token_tail_recomputes_from_key(vectors: dict[str, Any]) -> None:
    key = base64.b64decode(vectors["key"])
    checked = 0
    for name, header in vectors["macaroons"].items():
        (raw,) = _raw_tokens(header)
        token = decode(raw)
        assert token.encode() == raw, name  # byte-for-byte re-encoding
        if token.is_proof:
            # Attestation vectors are discharges signed with a per-ticket key.
            continue
        assert token.nonce.kid == base64.b64decode(vectors["kid"])
        assert token.location == vectors["location"]
        check_signature(token, key)
        checked += 1
    assert checked >= 15


def test_attenuation_reproduces_byte_for_byte(vectors: dict[str, Any]) -> None:
    count = 0
    for base_header, cases in vectors["attenuation"].items():
        base = _header_tokens(base_header)
        for caveats_b64, expected_header in cases.items():
            flat = wire.unpack_one(base64.b64decode(caveats_b64))
            new = cav.from_flat(flat)
            out = [t.attenuate(new) if t.location == vectors["location"] else t for t in base]
            assert [t.encode() for t in out] == _raw_tokens(expected_header)
            count += 1
    assert count == sum(len(c) for c in vectors["attenuation"].values()) >= 19


def test_with_tps_discharge_verifies_through_its_third_party_caveat(vectors: dict[str, Any]) -> None:
    key = base64.b64decode(vectors["key"])
    token, discharge = _header_tokens(vectors["with_tps"])
    tails = check_signature(token, key)
    i, third = next((i, c) for i, c in enumerate(token.unverified_caveats) if isinstance(c, ThirdParty))
    assert third.location == "discharged"
    assert discharge.nonce.kid == third.ticket and discharge.is_proof
    r = recover_discharge_key(tails[i], third)
    check_signature(discharge, r)


def test_unregistered_types_keep_their_bytes(vectors: dict[str, Any]) -> None:
    token = decode(_raw_tokens(vectors["macaroons"]["Struct"])[0])
    (c,) = token.unverified_caveats
    assert isinstance(c, UnknownCaveat)
    assert c.prohibits(Access(now=0)) is not None
