"""Verifying a workload's JWT: PyJWT checks the JWS, this module the rules around it.

PyJWT (with ``cryptography``) parses the token and checks the signature and ``iss``
(``aud`` is each binding's, :func:`has_audience`); the time rules are checked here
against the authority's injected clock (PyJWT would read ``time.time`` itself):
``exp``, ``iat`` and ``nbf`` with a bounded skew, and a bounded lifetime
(``exp - iat``), so a token minted to live for days is refused even while it is
valid. Only RS256, ES256 and EdDSA are accepted: never ``none``, never an HMAC
(whose "key" would be the issuer's public key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from vault.errors import InvalidToken

__all__ = [
    "ALGORITHMS",
    "MAX_JWT_BYTES",
    "JwtLimits",
    "UnverifiedJwt",
    "has_audience",
    "looks_like_jwt",
    "parse_unverified",
    "replay_digest",
    "verify_jwt",
]

ALGORITHMS = ("RS256", "ES256", "EdDSA")
MAX_JWT_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class JwtLimits:
    leeway: int = 60  # seconds of clock skew allowed on exp, nbf and iat
    max_lifetime: int = 3600  # exp - iat at most this


@dataclass(frozen=True, slots=True)
class UnverifiedJwt:
    """What a JWT says before its signature is checked: only for finding the issuer and key."""

    token: str
    issuer: str
    algorithm: str
    kid: str | None


def looks_like_jwt(credential: str) -> bool:
    """A compact JWS (three base64url parts), as opposed to a ``cv1_`` bundle or ``cvs_`` session."""
    return credential.count(".") == 2 and credential.startswith("eyJ")


def _invalid(reason: str) -> InvalidToken:
    return InvalidToken(f"invalid workload JWT: {reason}")


def parse_unverified(token: str) -> UnverifiedJwt:
    """The header's ``alg`` and ``kid`` and the payload's ``iss``; :class:`InvalidToken` if malformed."""
    if len(token) > MAX_JWT_BYTES:
        raise _invalid(f"longer than {MAX_JWT_BYTES} bytes")
    try:
        unverified = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _invalid("not a well-formed signed JWT") from None
    header, payload = unverified["header"], unverified["payload"]
    algorithm, kid, issuer = header.get("alg"), header.get("kid"), payload.get("iss")
    if algorithm not in ALGORITHMS:
        # Quoted with repr: it is text from the caller.
        raise _invalid(f"algorithm {str(algorithm)[:16]!r} is not accepted (only {', '.join(ALGORITHMS)})")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= 256):
        raise _invalid("its 'kid' header is not a short string")
    if not isinstance(issuer, str) or not 0 < len(issuer) <= 512 or not issuer.isprintable():
        # Printable: it is looked up in the database and recorded in the audit log before it is verified.
        raise _invalid("it has no 'iss' claim (a URL)")
    return UnverifiedJwt(token, issuer, algorithm, kid)


def verify_jwt(
    unverified: UnverifiedJwt,
    key: jwt.PyJWK,
    *,
    algorithms: Sequence[str],
    now: int,
    limits: JwtLimits,
) -> dict[str, Any]:
    """The verified claims; :class:`InvalidToken` naming the first rule the token breaks."""
    allowed = [a for a in algorithms if a in ALGORITHMS]
    if unverified.algorithm not in allowed:
        raise _invalid(f"algorithm {unverified.algorithm} is not allowed for this issuer ({', '.join(allowed)})")
    try:
        claims: dict[str, Any] = jwt.decode(
            unverified.token,
            key.key,
            algorithms=[unverified.algorithm],
            issuer=unverified.issuer,
            options={
                # The audience is each binding's own (has_audience); exp, nbf and iat: _check_times.
                "verify_aud": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": ["iss", "sub", "aud", "exp", "iat"],
            },
        )
    except jwt.MissingRequiredClaimError as exc:
        raise _invalid(f"it has no {exc.claim!r} claim") from None
    except jwt.InvalidSignatureError:
        raise _invalid("its signature does not verify with the issuer's key") from None
    except jwt.PyJWTError as exc:
        raise _invalid(f"it does not verify ({type(exc).__name__})") from None
    _check_times(claims, now, limits)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= 1024 or not sub.isprintable():
        raise _invalid("its 'sub' claim is not a short printable string")
    return claims


def has_audience(claims: Mapping[str, Any], audience: str) -> bool:
    """Whether ``aud`` (a string or a list of strings) names ``audience``."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        return aud == audience
    return isinstance(aud, list) and audience in [a for a in aud if isinstance(a, str)]


def _time_claim(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"its {name!r} claim is not a number")
    return int(value)


def _check_times(claims: Mapping[str, Any], now: int, limits: JwtLimits) -> None:
    exp, iat, nbf = _time_claim(claims, "exp"), _time_claim(claims, "iat"), _time_claim(claims, "nbf")
    assert exp is not None and iat is not None  # required above
    if exp <= now - limits.leeway:
        raise _invalid(f"it expired {now - exp} s ago")
    if nbf is not None and nbf > now + limits.leeway:
        raise _invalid(f"it is not valid for another {nbf - now} s (nbf)")
    if iat > now + limits.leeway:
        raise _invalid(f"it was issued {iat - now} s in the future (iat)")
    if exp - iat > limits.max_lifetime:
        raise _invalid(f"it is valid for {exp - iat} s, more than the {limits.max_lifetime} s this authority accepts")


def replay_digest(issuer: str, claims: Mapping[str, Any], token: str) -> bytes:
    """What identifies one JWT for the replay bound: its ``jti`` (per issuer), or the whole token."""
    jti = claims.get("jti")
    if isinstance(jti, str) and jti:
        return hashlib.sha256(b"jti\x00" + issuer.encode() + b"\x00" + jti.encode()).digest()
    return hashlib.sha256(b"jwt\x00" + token.encode()).digest()
