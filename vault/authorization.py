"""The ``Authorization`` header's grammar, defined once: pure, so the CLI can read a pasted header too.

``Bearer <credential>`` or Fly's ``FlyV1 <credential>``, the scheme in any case,
spaces around ignored. The services read it through
:func:`vault.web.common.credential` (which picks the header); ``cvault tokens``
reads a token a person pasted, bare or as it was sent (:func:`pasted_credential`).
"""

from __future__ import annotations

import re

from vault.errors import Unauthenticated

__all__ = [
    "AUTHORIZATION_SCHEMES",
    "FEED_TOKEN",
    "authorization_credential",
    "pasted_credential",
    "redact_credentials",
]

AUTHORIZATION_SCHEMES = ("bearer", "flyv1")
"""``Authorization`` schemes that carry a credential (a session or a token bundle); Fly's ``FlyV1`` too."""

FEED_TOKEN = re.compile(r"cvf_[A-Za-z0-9_-]{43}")
"""A revocation feed token: ``cvf_`` and base64url (no padding) of 32 random bytes (docs/revocation.md).

The authority checks a presented one against it, the configuration a configured one, so it lives here, in
neither the domain nor the configuration."""


# Every credential cvault issues starts with one of these: token bundles (cv1_), sessions (cvs_), revocation feed
# tokens (cvf_), invitation codes (cvi_) and verification codes (cvm_); Fly's fm2_ tokens are standard base64,
# whose alphabet has "/", so the rest of the text after one goes too.
_CREDENTIAL = re.compile(r"cv[1sfim]_[^/?#\s]*|fm2_\S*")


def redact_credentials(text: str) -> str:
    """``text`` with every credential-like run replaced by ``[credential]``: what a client put in a path must not
    reach a log (the access log prints paths)."""
    return _CREDENTIAL.sub("[credential]", text) if "cv" in text or "fm2_" in text else text


def authorization_credential(value: str) -> str | None:
    """The credential of an ``Authorization`` value, ``None`` for an empty one.

    Another scheme, or a scheme with nothing after it, is :class:`Unauthenticated`, whose
    message never quotes the value: it may hold a credential sent to the wrong place.
    """
    value = value.strip()
    if not value:
        return None
    scheme, _, rest = value.partition(" ")
    rest = rest.strip()
    if scheme.lower() not in AUTHORIZATION_SCHEMES or not rest:
        raise Unauthenticated("Authorization must be 'Bearer <credential>' (a cvs_ session or a cv1_ token bundle)")
    return rest


def pasted_credential(text: str) -> str:
    """A credential as a person pastes it: bare (``cv1_...``) or as sent (``Bearer cv1_...``); ``""`` if none."""
    text = text.strip()
    if text.partition(" ")[0].lower() not in AUTHORIZATION_SCHEMES:
        return text
    try:
        return authorization_credential(text) or ""
    except Unauthenticated:  # the scheme alone
        return ""
