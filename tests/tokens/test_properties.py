"""The laws of macaroons, stated as Hypothesis properties."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.tokenkit import NOW, Setup
from vault.errors import InvalidToken, MissingDischarge, Unauthorized
from vault.macaroon import Access, Macaroon, decode, decode_token, encode_token, verify
from vault.macaroon import caveats as cv
from vault.macaroon.access import ALL
from vault.macaroon.caveat import Caveat

names = st.sampled_from(["prod", "dev", "db/url", "db/", "api/key", "x"])
masks = st.integers(min_value=0, max_value=ALL)
orgs = st.integers(min_value=1, max_value=3)


def _mask_map(pairs: list[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(dict(pairs).items()))


caveat_strategy: st.SearchStrategy[Caveat] = st.one_of(
    st.builds(cv.Organization, orgs, masks),
    st.builds(cv.ValidityWindow, st.integers(NOW - 100, NOW + 100), st.integers(NOW - 100, NOW + 100)),
    st.builds(lambda p: cv.Vaults(_mask_map(p)), st.lists(st.tuples(names, masks), min_size=1, max_size=3)),
    st.builds(lambda p: cv.Secrets(_mask_map(p)), st.lists(st.tuples(names, masks), min_size=1, max_size=3)),
    st.builds(cv.Action, masks),
    st.builds(lambda ops: cv.Operations(tuple(ops)), st.lists(st.sampled_from(["a", "b", "c"]), min_size=1)),
    st.builds(lambda n: cv.ClientCIDR((n,)), st.sampled_from(["10.0.0.0/8", "127.0.0.1/32", "::1/128"])),
)

access_strategy = st.builds(
    Access,
    now=st.integers(NOW - 100, NOW + 100),
    action=masks,
    org_id=st.one_of(st.none(), orgs),
    vault=st.one_of(st.none(), names),
    secret=st.one_of(st.none(), names),
    operation=st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    client_ip=st.one_of(st.none(), st.sampled_from([ipaddress.ip_address("10.1.2.3"), ipaddress.ip_address("::1")])),
)

SETUP = Setup()


def _allowed(token: Macaroon, access: Access) -> bool:
    try:
        verify(token, SETUP.root_key, now=access.now).check(access)
    except Unauthorized:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(st.lists(caveat_strategy, min_size=1, max_size=8))
def test_encode_decode_round_trip(caveats: list[Caveat]) -> None:
    token = Macaroon.mint(b"kid", "loc", SETUP.root_key, caveats)
    raw = token.encode()
    again = decode(raw)
    assert again.encode() == raw
    assert again.unverified_caveats == token.unverified_caveats
    assert decode_token(encode_token(token)).encode() == raw


@settings(max_examples=300, deadline=None)
@given(st.lists(caveat_strategy, max_size=5), st.lists(caveat_strategy, min_size=1, max_size=5), access_strategy)
def test_attenuation_never_widens(base: list[Caveat], extra: list[Caveat], access: Access) -> None:
    parent = SETUP.token(cv.Organization(1, ALL), *base, third_party=False)
    child = parent.attenuate(extra)
    if _allowed(child, access):
        assert _allowed(parent, access)


def _valid_bundle() -> tuple[Macaroon, Macaroon]:
    token = SETUP.token(cv.Organization(1, ALL), cv.Vaults((("prod", 1),)))
    return token, SETUP.discharge(token, cv.UserID(9))


TOKEN, DISCHARGE = _valid_bundle()


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_single_byte_mutation_is_invalid_token(data: st.DataObject) -> None:
    which = data.draw(st.sampled_from(["token", "discharge"]))
    raw = bytearray((TOKEN if which == "token" else DISCHARGE).encode())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[i]))
    try:
        mutated = decode(bytes(raw))
        token, discharge = (mutated, DISCHARGE) if which == "token" else (TOKEN, mutated)
        verify(token, SETUP.root_key, [discharge], now=NOW, trusted=SETUP.trusted, location=SETUP.first.location)
    except InvalidToken:
        return
    except MissingDischarge:
        # Only possible when the mutation hit the discharge's kid (its ticket): it is then
        # a discharge for no ticket of this token, i.e. the real one is missing.
        assert which == "discharge" and mutated.nonce.kid != DISCHARGE.nonce.kid
        return
    raise AssertionError(f"mutation at byte {i} of the {which} still verified")
