"""Whatever bytes arrive, the token decoder says InvalidToken (or decodes), never anything else."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.tokenkit import NOW, Setup
from vault.errors import VaultError
from vault.macaroon import Access, Macaroon, decode, parse_bundle, verify
from vault.macaroon.caveat import registered

SETUP = Setup()
MINTED = SETUP.token(third_party=False)
CAVEAT_TYPES = sorted({cls.TYPE for cls in registered().values()})

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers(-5, 5), st.binary(max_size=4)), inner, max_size=3),
    ),
    max_leaves=12,
)
caveat_bodies = st.lists(st.tuples(st.sampled_from([*CAVEAT_TYPES, 999]), values), max_size=4)
nonces = st.one_of(
    st.just([MINTED.nonce.kid, MINTED.nonce.rnd]),
    st.lists(st.one_of(st.binary(max_size=20), st.booleans(), st.integers()), max_size=4),
    values,
)


def _token(nonce: Any, location: Any, caveats: list[tuple[int, Any]], tail: Any) -> bytes:
    flat = [x for pair in caveats for x in pair]
    return msgpack.packb([nonce, location, flat, tail], use_bin_type=True)


def _exercise(raw: bytes) -> None:
    try:
        token = decode(raw)
    except VaultError:
        token = None
    if token is not None:
        # Signed for real, so that verification reaches every caveat's check.
        candidates = [token]
        try:
            signed = Macaroon.mint(MINTED.nonce.kid, SETUP.first.location, SETUP.root_key, token.unverified_caveats)
            candidates += [signed, decode(signed.encode())]
        except TypeError:
            pass  # an unknown caveat whose body we cannot write canonically (e.g. a nil map key)
        except VaultError:
            pass  # mint refuses what only a discharge may carry (an attestation such as UserID)
        for candidate in candidates:
            try:
                verified = verify(candidate, SETUP.root_key, now=NOW)
                verified.check(Access(now=NOW, action=1, org_id=1, vault="v", secret="s", operation="secrets.read"))
                verified.expiry()
            except VaultError:
                pass
    text = "cv1_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with contextlib.suppress(VaultError):
        parse_bundle(text + "," + text)


@settings(max_examples=600, deadline=None)
@given(
    nonces,
    st.one_of(st.just(SETUP.first.location), values),
    caveat_bodies,
    st.one_of(st.binary(min_size=32, max_size=32), values),
)
def test_structured_garbage_is_only_ever_invalid(nonce: Any, location: Any, caveats: Any, tail: Any) -> None:
    try:
        raw = _token(nonce, location, caveats, tail)
    except (TypeError, ValueError, OverflowError):
        return
    _exercise(raw)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_only_ever_invalid(raw: bytes) -> None:
    _exercise(raw)


def _nested(depth: int) -> bytes:
    return b"\x91" * depth + b"\xc0"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x94" + _nested(30000),
        b"\x94" + b"\xdd\xff\xff\xff\xff",  # an array claiming 4 billion items
        b"\x94" + b"\xdb\xff\xff\xff\xff" + b"x",  # a string claiming 4 GB
        b"\x94" + b"\xc9\xff\xff\xff\xff\x01",  # an ext claiming 4 GB
        b"\x94\xd4\x01\x00",  # fixext
        b"\x94" + b"\x81\x91\x00\x00",  # a map keyed by an array
        b"\x94\x92\xc4\x00\xc4\x00\xa1x" + b"\xdc\x00\x02" + b"\x01" + _nested(5000) + b"\xc4\x20" + b"\x00" * 32,
        b"\x94\x92\xc4\x00\xc4\x00\xa1x" + b"\x92\x01\x81\xc0\xc0" + b"\xc4\x20" + b"\x00" * 32,
        b"\x94\x92\xc4\x00\xc4\x00\xa1x" + b"\x92\x01\x81\x81\x01\x01\x01" + b"\xc4\x20" + b"\x00" * 32,
    ],
)
def test_adversarial_msgpack_is_invalid(raw: bytes) -> None:
    _exercise(raw)
