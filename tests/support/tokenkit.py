"""Small builders for token-core tests: a first party, a third party, and their shared ticket keys."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from nacl.public import Box, PrivateKey

from vault.macaroon import Macaroon, add_third_party, bind, start_discharge
from vault.macaroon.caveat import Caveat
from vault.macaroon.caveats import Organization, ValidityWindow

NOW = 1_800_000_000


@dataclass
class Party:
    location: str
    sk: PrivateKey = field(default_factory=PrivateKey.generate)

    @property
    def pk(self) -> bytes:
        return bytes(self.sk.public_key)

    def shared(self, other: Party) -> bytes:
        return bytes(Box(self.sk, other.sk.public_key).shared_key())


@dataclass
class Setup:
    first: Party = field(default_factory=lambda: Party("https://store.test"))
    third: Party = field(default_factory=lambda: Party("https://auth.test/org"))
    root_key: bytes = field(default_factory=lambda: os.urandom(32))

    def token(self, *caveats: Caveat, third_party: bool = True, ticket_caveats: tuple[Caveat, ...] = ()) -> Macaroon:
        base = caveats or (Organization(1, 0b111111),)
        m = Macaroon.mint(b"kid-1", self.first.location, self.root_key, base)
        if third_party:
            m = add_third_party(m, self.third.location, self.first.shared(self.third), self.first.pk, ticket_caveats)
        return m

    def discharge(
        self,
        parent: Macaroon,
        *extra: Caveat,
        window: tuple[int, int] = (NOW - 10, NOW + 300),
        bind_to: Macaroon | None = None,
        binding: bool = True,
    ) -> Macaroon:
        (third,) = parent.third_party_tickets(self.third.location)
        _, d = start_discharge(third.ticket, self.third.shared(self.first), self.third.location)
        d = d.attenuate([ValidityWindow(*window), *extra])
        if binding:
            d = bind(d, (bind_to or parent).binding_id())
        return d.finalize()

    @property
    def trusted(self) -> dict[str, list[bytes]]:
        return {self.third.location: [self.first.shared(self.third)]}
