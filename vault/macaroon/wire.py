"""MessagePack framing for the Fly.io macaroon wire format.

Two directions, two rules. *Creating* bytes is canonical: maps are written with
sorted keys, ints in their most compact form, ``bytes`` as ``bin``, so the same
caveat always signs the same way (the Go library does the same). *Reading*
bytes keeps them exactly as received: signatures are computed over the bytes on
the wire, never over a re-encoding of what we understood of them.

Decoding is capped: the unpacker is told the real size of its input and
maximum lengths for every container, so a length field on the wire can never
make us allocate more than the input could hold.
"""

from __future__ import annotations

from typing import Any

import msgpack

from vault.errors import InvalidToken

# Caps on everything read from the network. Tokens in this system carry a
# handful of caveats; these leave generous room while bounding work per request.
MAX_TOKEN_BYTES = 32 * 1024
MAX_CAVEATS = 256
MAX_DEPTH = 16
MAX_CONTAINER_LEN = 4096

# One shared packer: creating one per call costs more than the packing itself. Its
# pack() runs entirely in C without releasing the GIL and we set no Python
# callbacks, so calls from different threads cannot interleave.
_PACKER = msgpack.Packer(use_bin_type=True, autoreset=True)


def canonical(value: Any) -> Any:
    """Return ``value`` with every map's keys sorted (recursively)."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value, key=_sort_key)}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def _sort_key(key: Any) -> tuple[int, Any]:
    # Keys of one map share a type in practice; ordering by type first keeps
    # mixed maps deterministic instead of raising.
    if isinstance(key, bool):
        return (0, key)
    if isinstance(key, int):
        return (1, key)
    if isinstance(key, str):
        return (2, key.encode())
    if isinstance(key, bytes):
        return (3, key)
    raise TypeError(f"unsupported map key type {type(key).__name__}")


def pack(value: Any) -> bytes:
    """Canonical MessagePack encoding of ``value``."""
    out: bytes = _PACKER.pack(canonical(value))
    return out


def array_header(n: int) -> bytes:
    out: bytes = _PACKER.pack_array_header(n)
    return out


def unpacker(data: bytes) -> msgpack.Unpacker:
    """An unpacker over ``data`` whose container caps are bounded by its size."""
    size = len(data)
    cap = min(size, MAX_CONTAINER_LEN)
    up = msgpack.Unpacker(
        raw=False,
        strict_map_key=False,
        use_list=True,
        max_buffer_size=max(size, 1),
        max_str_len=size,
        max_bin_len=size,
        max_array_len=cap,
        max_map_len=cap,
        max_ext_len=0,
    )
    up.feed(data)
    return up


def unpack_one(data: bytes) -> Any:
    """Decode exactly one value occupying all of ``data``."""
    up = unpacker(data)
    try:
        value = up.unpack()
    except Exception as exc:  # msgpack raises a zoo of types; all mean "bad bytes"
        raise InvalidToken() from exc
    if up.tell() != len(data):
        raise InvalidToken()
    check_depth(value)
    return value


def check_depth(value: Any, depth: int = 0) -> None:
    """Refuse values nested deeper than :data:`MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise InvalidToken()
    if isinstance(value, list):
        for v in value:
            if isinstance(v, list | dict):
                check_depth(v, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, list | dict | tuple):
                raise InvalidToken()
            if isinstance(v, list | dict):
                check_depth(v, depth + 1)
