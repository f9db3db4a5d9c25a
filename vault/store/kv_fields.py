"""Vault KV version 2 field types, parsed once: durations, custom metadata, JSON merge patches. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vault.errors import BadRequest

__all__ = [
    "MAX_CUSTOM_KEYS",
    "check_custom_metadata",
    "check_max_versions",
    "format_duration",
    "merge_patch",
    "parse_duration",
    "subkeys",
]

MAX_CUSTOM_KEYS = 64  # Vault's limits on custom_metadata
MAX_CUSTOM_KEY_CHARS = 128
MAX_CUSTOM_VALUE_CHARS = 512
MAX_DURATION = 100 * 365 * 86400
MAX_PATCH_DEPTH = 32

_UNITS = {"h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?")
_DURATION_MESSAGE = 'durations are whole seconds or Go-style "1h30m", "90s", "0s"'


def parse_duration(value: object, what: str = "delete_version_after") -> int:
    """Seconds from an integer or a Go duration string of h, m and s (``"1h30m"``, ``"0s"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value) < 12:
        seconds = int(value)
    elif isinstance(value, str) and value and (m := _DURATION.fullmatch(value)) is not None:
        seconds = sum(int(n) * _UNITS[u] for n, u in zip(m.groups(), "hms", strict=True) if n)
    else:
        raise BadRequest(f"{what}: {_DURATION_MESSAGE}")
    if not 0 <= seconds <= MAX_DURATION:
        raise BadRequest(f"{what} must be between 0 and {MAX_DURATION} seconds")
    return seconds


def format_duration(seconds: int) -> str:
    """Go's ``time.Duration.String()`` for whole seconds: ``0s``, ``90s`` -> ``1m30s``, ``3600`` -> ``1h0m0s``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def check_max_versions(value: object) -> int:
    """0-1000; also as decimal text, which the Vault CLI sends for ``bao write <mount>/metadata/K max_versions=7``."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 4:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1000:
        raise BadRequest("max_versions must be a whole number from 0 (the default) to 1000")
    return value


def check_custom_metadata(value: object) -> dict[str, str]:
    """Vault's rule: an object of at most 64 string keys (128 characters) to string values (512)."""
    if not isinstance(value, dict) or len(value) > MAX_CUSTOM_KEYS:
        raise BadRequest(f"custom_metadata must be an object of at most {MAX_CUSTOM_KEYS} keys")
    for key, item in value.items():
        if (
            not isinstance(item, str)
            or not key
            or len(key) > MAX_CUSTOM_KEY_CHARS
            or len(item) > MAX_CUSTOM_VALUE_CHARS
        ):
            raise BadRequest(
                f"custom_metadata keys are 1-{MAX_CUSTOM_KEY_CHARS} characters and its values strings of at most "
                f"{MAX_CUSTOM_VALUE_CHARS}"
            )
        if "\x00" in key or "\x00" in item:
            raise BadRequest("custom_metadata keys and values cannot contain NUL characters")
    return dict(value)


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """RFC 7386 JSON merge patch of two objects: ``null`` removes a key, objects merge, anything else replaces."""
    if depth > MAX_PATCH_DEPTH:
        raise BadRequest("the patch is nested too deeply")
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            current = merged.get(key)
            merged[key] = merge_patch(current if isinstance(current, dict) else {}, value, depth + 1)
        else:
            merged[key] = value
    return merged


def subkeys(value: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """Vault's ``subkeys`` of a KV object: its keys, objects descended into, every other value ``null``.

    ``depth`` 0 is unlimited (here: :data:`MAX_PATCH_DEPTH` levels); 1 gives the top-level keys only.
    """
    levels = depth if 0 < depth <= MAX_PATCH_DEPTH else MAX_PATCH_DEPTH
    return {
        key: subkeys(item, levels - 1) if isinstance(item, dict) and item and levels > 1 else None
        for key, item in value.items()
    }
