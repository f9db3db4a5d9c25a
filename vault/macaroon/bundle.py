"""String forms: ``cv1_`` tokens, comma-separated bundles, and HTTP headers.

``cv1_`` + unpadded base64url of the msgpack bytes is cvault's form; the prefix
lets secret scanners find leaked tokens. Fly's ``fm2_`` (standard base64, as in
``FlyV1`` headers) is accepted on input so Fly's tokens and published vectors
load unchanged.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from vault.errors import InvalidToken

from . import wire
from .macaroon import PARTS, Macaroon, PartDecoder, decode

PREFIX = "cv1_"
FLY_PREFIX = "fm2_"
MAX_BUNDLE_TOKENS = 16
MAX_BUNDLE_CHARS = MAX_BUNDLE_TOKENS * (wire.MAX_TOKEN_BYTES * 4 // 3 + 8)


def encode_token(token: Macaroon) -> str:
    return PREFIX + base64.urlsafe_b64encode(token.encode()).rstrip(b"=").decode()


def encode_bundle(tokens: Iterable[Macaroon]) -> str:
    return ",".join(encode_token(t) for t in tokens)


def decode_token(text: str, parts: PartDecoder = PARTS) -> Macaroon:
    text = text.strip()
    try:
        if text.startswith(PREFIX):
            b64 = text[len(PREFIX) :]
            raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        elif text.startswith(FLY_PREFIX):
            raw = base64.b64decode(text[len(FLY_PREFIX) :], validate=True)
        else:
            raise InvalidToken("invalid token: expected a token starting with cv1_")
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken() from exc
    return decode(raw, parts)


@dataclass(frozen=True, slots=True)
class Bundle:
    """The macaroons a caller presented: permission tokens and discharges, in any order."""

    tokens: tuple[Macaroon, ...]

    @property
    def permission_tokens(self) -> list[Macaroon]:
        return [t for t in self.tokens if not t.is_proof]

    @property
    def discharges(self) -> list[Macaroon]:
        return [t for t in self.tokens if t.is_proof]

    def permission_token(self, location: str) -> Macaroon:
        """The one permission token for ``location``; none or several is an error."""
        found = [t for t in self.permission_tokens if t.location == location]
        if len(found) != 1:
            what = "no" if not found else "more than one"
            raise InvalidToken(f"invalid token: bundle has {what} token for {location}")
        return found[0]

    def encode(self) -> str:
        return encode_bundle(self.tokens)


def parse_bundle(text: str, parts: PartDecoder = PARTS) -> Bundle:
    """Parse a comma-separated bundle; anything malformed is :class:`InvalidToken`.

    ``parts``: see :func:`vault.macaroon.macaroon.decode`.
    """
    if len(text) > MAX_BUNDLE_CHARS:
        raise InvalidToken("invalid token: bundle too large")
    pieces = [p for p in (s.strip() for s in text.split(",")) if p]
    if not pieces:
        raise InvalidToken()
    if len(pieces) > MAX_BUNDLE_TOKENS:
        raise InvalidToken(f"invalid token: a bundle holds at most {MAX_BUNDLE_TOKENS} tokens")
    return Bundle(tuple(decode_token(p, parts) for p in pieces))
