"""The token core: Fly.io-compatible macaroons. Pure: no I/O, no clock, no globals but the caveat registry.

The laws of macaroons, which everything here preserves:

* Anybody holding a token can append a caveat to it, without any key
  (attenuation): ``T(i+1) = HMAC-SHA256(T(i), msgpack([type_i, body_i]))``.
* A caveat can only narrow what a token allows; access is granted only when
  every caveat (and every caveat its discharges add) allows it.
* Nobody can remove a caveat: the tail is an HMAC chain rooted in
  ``T0 = HMAC-SHA256(root_key, msgpack(nonce))`` and only the holder of the root
  key can recompute it.
* A third-party (3P) caveat is satisfied by a *discharge*: a separate macaroon
  minted by the third party with a key only it and the first party can recover.
  Discharges are *proofs*: their tail is finalized
  (``HMAC-SHA256("proof-signature-finalization", T(n))``) so the holder cannot
  append to them, and they are bound to the parent token (``BindToParentToken``)
  so a stolen discharge cannot travel to another token.

Crypto choices: HMAC-SHA256 for the chain, SHA-256 for token binding ids,
ChaCha20-Poly1305 (random 12-byte nonce prepended) to seal discharge keys and
tickets, X25519 (computed outside this package) to give each first/third-party
pair a shared ticket key without copying a symmetric secret between services.
All comparisons of MACs go through :func:`hmac.compare_digest`.

Bytes on the wire are verified as received: decoding keeps each caveat's raw
bytes; only newly created caveats are encoded (canonically). Unknown caveat
types decode and re-encode byte-exact but never authorize anything.
"""

from . import caveats
from .access import ALL, AUDIT, CONTROL, CREATE, DELETE, READ, WRITE, Access, mask_from_string, mask_to_string
from .bundle import Bundle, decode_token, encode_bundle, encode_token, parse_bundle
from .caveat import Caveat, Refusal, UnknownCaveat, from_json
from .crypto import EncryptionKey, SigningKey
from .macaroon import Macaroon, Nonce, PartDecoder, decode, decode_caveat, decode_nonce
from .third_party import Ticket, add_third_party, bind, open_ticket, start_discharge, ticket_sender
from .verify import TrustedThirdParties, Verified, check_signature, verify

__all__ = [
    "ALL",
    "AUDIT",
    "CONTROL",
    "CREATE",
    "DELETE",
    "READ",
    "WRITE",
    "Access",
    "Bundle",
    "Caveat",
    "EncryptionKey",
    "Macaroon",
    "Nonce",
    "PartDecoder",
    "Refusal",
    "SigningKey",
    "Ticket",
    "TrustedThirdParties",
    "UnknownCaveat",
    "Verified",
    "add_third_party",
    "bind",
    "caveats",
    "check_signature",
    "decode",
    "decode_caveat",
    "decode_nonce",
    "decode_token",
    "encode_bundle",
    "encode_token",
    "from_json",
    "mask_from_string",
    "mask_to_string",
    "open_ticket",
    "parse_bundle",
    "start_discharge",
    "ticket_sender",
    "verify",
]
