"""Third-party caveats and discharges: every way a discharge can be wrong is refused."""

from __future__ import annotations

import pytest

from tests.support.tokenkit import NOW, Party, Setup
from vault.errors import BadRequest, InvalidToken, MissingDischarge, Unauthorized
from vault.macaroon import Access, Macaroon, add_third_party, bind, open_ticket, start_discharge, verify
from vault.macaroon import caveats as cv
from vault.macaroon.access import READ, WRITE


def test_valid_bound_discharge_verifies_and_merges_restrictions() -> None:
    s = Setup()
    token = s.token(ticket_caveats=(cv.ConfineOrganization(1),))
    d = s.discharge(token, cv.Organization(1, READ), cv.UserID(42))
    v = verify(token, s.root_key, [d], now=NOW, trusted=s.trusted)
    assert v.attested(cv.UserID) == [cv.UserID(42)]
    v.check(Access(now=NOW, org_id=1, action=READ))
    with pytest.raises(Unauthorized, match="not 'w'"):
        v.check(Access(now=NOW, org_id=1, action=WRITE))


def test_ticket_carries_caveats_for_the_third_party() -> None:
    s = Setup()
    token = s.token(ticket_caveats=(cv.ConfineOrganization(7), cv.MaxValidity(300)))
    (third,) = token.third_party_tickets(s.third.location)
    ticket = open_ticket(third.ticket, s.third.shared(s.first))
    assert ticket.caveats == (cv.ConfineOrganization(7), cv.MaxValidity(300))


def test_missing_discharge_names_the_location() -> None:
    s = Setup()
    token = s.token()
    with pytest.raises(MissingDischarge, match=r"discharge for https://auth\.test/org missing") as exc:
        verify(token, s.root_key, [], now=NOW)
    assert exc.value.status == 401 and exc.value.location == s.third.location


def test_discharge_for_another_ticket_is_missing() -> None:
    s = Setup()
    token, other = s.token(), s.token()
    with pytest.raises(MissingDischarge, match="missing"):
        verify(token, s.root_key, [s.discharge(other)], now=NOW)


def test_unbound_discharge_is_refused() -> None:
    s = Setup()
    token = s.token()
    with pytest.raises(MissingDischarge, match="not bound to this token"):
        verify(token, s.root_key, [s.discharge(token, binding=False)], now=NOW)


def test_expired_discharge_is_refused() -> None:
    s = Setup()
    token = s.token()
    d = s.discharge(token, window=(NOW - 700, NOW - 100))
    with pytest.raises(MissingDischarge, match=r"expired at .* \(100 seconds ago\)"):
        verify(token, s.root_key, [d], now=NOW)


def test_discharge_bound_to_a_different_token_is_refused() -> None:
    s = Setup()
    token = s.token()
    # Another token holding the *same* ticket (an attenuation of the same parent is fine,
    # but a sibling minted separately is not): bind to the sibling's tail.
    sibling = Macaroon.mint(b"kid-1", s.first.location, s.root_key, [cv.Organization(1, READ)])
    d = s.discharge(token, bind_to=sibling)
    with pytest.raises(MissingDischarge, match="bound to a different token"):
        verify(token, s.root_key, [d], now=NOW)


def test_binding_follows_attenuation_but_not_back() -> None:
    s = Setup()
    token = s.token()
    narrowed = token.attenuate([cv.Vaults((("prod", READ),))])
    # Bound to the broad token: works with the narrowed copy too.
    verify(narrowed, s.root_key, [s.discharge(token)], now=NOW)
    # Bound to the narrowed copy: refuses the broader original.
    with pytest.raises(MissingDischarge, match="bound to a different token"):
        verify(token, s.root_key, [s.discharge(token, bind_to=narrowed)], now=NOW)


def test_attestation_from_ticket_verifier_cannot_open_is_ignored() -> None:
    s = Setup()
    token = s.token()
    # An attenuator adds its own 3P caveat to a party it controls and discharges it
    # with a forged UserID attestation. Signatures verify, but the store cannot open
    # that ticket, so the attestation must not count.
    evil_first, evil_third = Party("https://evil.test/fp"), Party("https://evil.test")
    token = add_third_party(token, evil_third.location, evil_first.shared(evil_third), evil_first.pk)
    real = s.discharge(token)
    (third,) = token.third_party_tickets(evil_third.location)
    _, forged = start_discharge(third.ticket, evil_third.shared(evil_first), evil_third.location)
    forged = forged.attenuate([cv.ValidityWindow(NOW - 1, NOW + 60), cv.UserID(1)])
    forged = bind(forged, token.binding_id()).finalize()
    v = verify(token, s.root_key, [real, forged], now=NOW, trusted=s.trusted)
    assert v.attested(cv.UserID) == []


def test_trusted_discharge_attestations_count() -> None:
    s = Setup()
    token = s.token()
    v = verify(token, s.root_key, [s.discharge(token, cv.UserID(5))], now=NOW, trusted=s.trusted)
    assert v.attested(cv.UserID) == [cv.UserID(5)]
    # Without the shared key the verifier cannot tell who issued it: dropped.
    v = verify(token, s.root_key, [s.discharge(token, cv.UserID(5))], now=NOW, trusted={})
    assert v.attested(cv.UserID) == []


def test_nested_third_party_in_discharge_is_refused() -> None:
    s = Setup()
    token = s.token()
    (third,) = token.third_party_tickets(s.third.location)
    _, d = start_discharge(third.ticket, s.third.shared(s.first), s.third.location)
    other = Party("https://nested.test")
    d = add_third_party(d, other.location, s.third.shared(other), s.third.pk)
    d = bind(d.attenuate([cv.ValidityWindow(NOW - 1, NOW + 60)]), token.binding_id()).finalize()
    with pytest.raises(MissingDischarge, match="carries its own third-party caveat"):
        verify(token, s.root_key, [d], now=NOW)


def test_self_referencing_discharge_is_refused_without_recursion() -> None:
    s = Setup()
    token = s.token()
    (third,) = token.third_party_tickets(s.third.location)
    _, d = start_discharge(third.ticket, s.third.shared(s.first), s.third.location)
    # The discharge carries a 3P caveat whose ticket is its own kid: a cycle.
    d = d.attenuate([cv.ThirdParty(s.third.location, b"\x00" * 60, d.nonce.kid)])
    d = bind(d.attenuate([cv.ValidityWindow(NOW - 1, NOW + 60)]), token.binding_id()).finalize()
    with pytest.raises(MissingDischarge, match="carries its own third-party caveat"):
        verify(token, s.root_key, [d, d], now=NOW)


def test_discharge_with_wrong_key_is_invalid() -> None:
    s = Setup()
    token = s.token()
    (third,) = token.third_party_tickets(s.third.location)
    d = Macaroon.mint(third.ticket, s.third.location, b"k" * 32, [cv.ValidityWindow(0, NOW + 9)], proof=True)
    d = bind(d, token.binding_id()).finalize()
    with pytest.raises(InvalidToken):
        verify(token, s.root_key, [d], now=NOW)


def test_discharge_without_validity_window_is_refused() -> None:
    s = Setup()
    token = s.token()
    (third,) = token.third_party_tickets(s.third.location)
    _, d = start_discharge(third.ticket, s.third.shared(s.first), s.third.location)
    d = bind(d, token.binding_id()).finalize()
    with pytest.raises(MissingDischarge, match="no validity window"):
        verify(token, s.root_key, [d], now=NOW)


def test_ticket_sealed_for_another_party_does_not_open() -> None:
    s = Setup()
    token = s.token()
    (third,) = token.third_party_tickets(s.third.location)
    stranger = Party("https://other-authority.test")
    with pytest.raises(InvalidToken):
        start_discharge(third.ticket, stranger.shared(s.first), s.third.location)
    tampered = bytearray(third.ticket)
    tampered[-1] ^= 1
    with pytest.raises(InvalidToken):
        start_discharge(bytes(tampered), s.third.shared(s.first), s.third.location)


def test_finalized_discharge_cannot_be_attenuated() -> None:
    s = Setup()
    token = s.token()
    d = s.discharge(token)
    with pytest.raises(BadRequest, match="cannot be attenuated"):
        d.attenuate([cv.Organization(1, READ)])


def test_token_without_organization_authorizes_nothing() -> None:
    s = Setup()
    token = s.token(cv.Vaults((("prod", READ),)), third_party=False)
    with pytest.raises(Unauthorized, match="no organization"):
        verify(token, s.root_key, [], now=NOW)


def test_attestation_in_permission_token_is_invalid() -> None:
    s = Setup()
    with pytest.raises(BadRequest, match="attestation"):
        s.token(cv.Organization(1, READ), cv.UserID(1))
