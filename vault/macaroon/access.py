"""What a request wants to do, as the caveats see it, and the permission masks.

Masks are Fly's ``resset`` action bits (``r w c d C``) plus cvault's ``a``
(read the audit log). An :class:`Access` names only what the request touches;
a caveat about a resource the access does not name answers "unspecified",
which refuses at the top level and selects the ``else`` branch in ``IfPresent``.
"""

from __future__ import annotations

from typing import NamedTuple

from vault.types import IPAddress

READ = 1 << 0
WRITE = 1 << 1
CREATE = 1 << 2
DELETE = 1 << 3
CONTROL = 1 << 4
AUDIT = 1 << 5
ALL = READ | WRITE | CREATE | DELETE | CONTROL | AUDIT

_LETTERS = (("r", READ), ("w", WRITE), ("c", CREATE), ("d", DELETE), ("C", CONTROL), ("a", AUDIT))
_BY_LETTER = dict(_LETTERS)


def mask_from_string(text: str) -> int:
    """``"rw"`` -> READ|WRITE; ``"*"`` means every action. Unknown letters are an error."""
    if text == "*":
        return ALL
    mask = 0
    for letter in text:
        try:
            mask |= _BY_LETTER[letter]
        except KeyError:
            raise ValueError(f"unknown permission letter {letter!r} (use r, w, c, d, C, a)") from None
    return mask


def mask_to_string(mask: int) -> str:
    return "".join(letter for letter, bit in _LETTERS if mask & bit) or "-"


def is_subset(wanted: int, allowed: int) -> bool:
    return wanted & ~allowed == 0


class Access(NamedTuple):
    """One request's intent; ``None`` means the request does not touch that resource.

    Immutable; a named tuple rather than a frozen dataclass because every request
    builds one, and a frozen dataclass's ``__init__`` costs several times more.
    """

    now: int
    action: int = 0
    org_id: int | None = None
    vault: str | None = None
    secret: str | None = None
    operation: str | None = None
    # The parsed address (ClientCIDR checks it); the audit's text form is RequestContext.client_addr.
    client_ip: IPAddress | None = None
    user_id: int | None = None
    # For discharge requests: when the discharge being asked for would expire.
    discharge_expiry: int | None = None
