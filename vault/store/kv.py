"""How Vault KV version 2 data maps onto cvault secret values, and KV listings.

A KV version holds a JSON object; a cvault secret holds one string. The mapping
(``docs/vault-compat.md``) round-trips every object exactly:

* reading: a value that parses as a JSON object is returned as that object; any
  other value ``v`` is returned as ``{"value": v}``;
* writing: ``{"value": v}`` with a string ``v`` that does not itself parse as a
  JSON object is stored as the plain string ``v`` (so native clients read what a
  ``vault kv put mount/name value=...`` wrote); every other object is stored as
  its compact JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from vault.errors import BadRequest

__all__ = ["kv_keys", "kv_value", "stored_value"]


def _as_object(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def kv_value(stored: str) -> dict[str, Any]:
    """The KV ``data`` object of a stored value."""
    parsed = _as_object(stored)
    return parsed if parsed is not None else {"value": stored}


def stored_value(data: object) -> str:
    """The secret value to store for a KV ``data`` object."""
    if not isinstance(data, dict):
        raise BadRequest("data must be a JSON object")
    if set(data) == {"value"} and isinstance(data["value"], str) and _as_object(data["value"]) is None:
        plain: str = data["value"]
        return plain
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def kv_keys(names: Iterable[str], prefix: str) -> list[str]:
    """Vault's ``keys`` for a listing under ``prefix``: direct children, folders with a trailing ``/``."""
    keys: dict[str, None] = {}
    for name in names:
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :]
        head, slash, _ = rest.partition("/")
        if head:
            keys[head + slash] = None
    return sorted(keys)
