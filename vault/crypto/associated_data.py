"""Canonical, unambiguous encoding of the fields a ciphertext is bound to."""

from __future__ import annotations

import struct

__all__ = ["encode_associated_data"]


def encode_associated_data(label: str, *fields: str | int) -> bytes:
    """Encode ``label`` and ``fields`` so that no two different tuples collide.

    Each item is a type tag (``s`` or ``i``), a 4-byte big-endian length and the
    UTF-8 bytes (integers as ASCII decimal). Length prefixes stop ``("a", "bc")``
    from meeting ``("ab", "c")``; type tags stop ``"1"`` from meeting ``1``.
    """
    out = bytearray()
    for item in (label, *fields):
        # bool is an int subclass; refusing it catches a swapped argument early.
        if isinstance(item, bool):
            raise TypeError("associated data fields must be str or int, not bool")
        if isinstance(item, str):
            tag, data = b"s", item.encode("utf-8")
        elif isinstance(item, int):
            tag, data = b"i", str(item).encode("ascii")
        else:
            raise TypeError("associated data fields must be str or int")
        out += tag + struct.pack(">I", len(data)) + data
    return bytes(out)
