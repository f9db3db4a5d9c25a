"""Canonical, unambiguous encoding of the fields a ciphertext is bound to."""

from __future__ import annotations

import struct

__all__ = ["encode_associated_data"]

_HEADER = struct.Struct(">cI").pack


def encode_associated_data(label: str, *fields: str | int) -> bytes:
    """Encode ``label`` and ``fields`` so that no two different tuples collide.

    Each item is a type tag (``s`` or ``i``), a 4-byte big-endian length and the
    UTF-8 bytes (integers as ASCII decimal). Length prefixes stop ``("a", "bc")``
    from meeting ``("ab", "c")``; type tags stop ``"1"`` from meeting ``1``.
    """
    parts: list[bytes] = []
    for item in (label, *fields):
        # Exact types first (every secret read encodes this twice); bool is an int
        # subclass, and refusing it catches a swapped argument early.
        kind = type(item)
        if kind is str or (kind is not bool and isinstance(item, str)):
            tag, data = b"s", str.encode(item, "utf-8")  # type: ignore[arg-type]
        elif kind is int or (kind is not bool and isinstance(item, int)):
            tag, data = b"i", int.__repr__(item).encode("ascii")
        elif kind is bool:
            raise TypeError("associated data fields must be str or int, not bool")
        else:
            raise TypeError("associated data fields must be str or int")
        parts.append(_HEADER(tag, len(data)))
        parts.append(data)
    return b"".join(parts)
