"""Validation of what callers name: orgs, vaults, secrets, versions, stages.

Names reach SQL only as parameters, but they also reach caveat checks, audit
events and error messages, so they are checked once, at the edge, with rules a
person can read in the error message.
"""

from __future__ import annotations

import re

from vault.errors import BadRequest, NotFound, TooLarge

__all__ = [
    "MAX_SECRET_BYTES",
    "MAX_SECRET_NAME",
    "STAGES",
    "VERSIONS_MESSAGE",
    "check_org_id",
    "check_prefix",
    "check_secret_name",
    "check_slug",
    "check_stage",
    "check_value",
    "check_vault_name",
    "check_versions",
]

MAX_SECRET_BYTES = 64 * 1024
MAX_SECRET_NAME = 256
MAX_ORG_ID = (1 << 63) - 1
STAGES = ("current", "pending", "previous")
_MAX_VERSIONS = 1000
_VERSIONS_MESSAGE = VERSIONS_MESSAGE = (
    f"versions must be a non-empty list of at most {_MAX_VERSIONS} positive version numbers "
    '(numbers, numeric strings, or comma-separated strings such as "1,2")'
)

_VAULT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_SECRET = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_PREFIX = re.compile(r"[A-Za-z0-9._/-]*")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def check_org_id(text: str) -> int:
    """An org id from a URL path; anything that is not one is simply not found."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_ORG_ID:
        raise NotFound(f"organization {text[:32]!r} not found")
    return int(text)


def check_vault_name(name: str) -> str:
    if not _VAULT.fullmatch(name):
        raise BadRequest("vault names are 1-63 characters of a-z 0-9 _ - starting with a letter or digit")
    return name


def check_secret_name(name: str) -> str:
    if len(name) > MAX_SECRET_NAME or not _SECRET.fullmatch(name):
        raise BadRequest(
            f"secret names are at most {MAX_SECRET_NAME} characters of A-Z a-z 0-9 . _ - /, "
            "without a leading, trailing or doubled '/'"
        )
    return name


def check_prefix(prefix: str) -> str:
    if len(prefix) > MAX_SECRET_NAME or not _PREFIX.fullmatch(prefix):
        raise BadRequest(f"prefix must be at most {MAX_SECRET_NAME} characters of A-Z a-z 0-9 . _ - /")
    return prefix


def check_slug(slug: str) -> str:
    if not _SLUG.fullmatch(slug):
        raise BadRequest("slug must be 1-63 characters of a-z 0-9 - starting with a letter or digit")
    return slug


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise BadRequest(f"stage must be one of {', '.join(STAGES)}")
    return stage


def check_value(value: str) -> bytes:
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: JSON can spell them, UTF-8 cannot
        raise BadRequest("secret values must be Unicode text (no unpaired surrogates)") from None
    if len(data) > MAX_SECRET_BYTES:
        raise TooLarge(f"secret values are at most {MAX_SECRET_BYTES} bytes")
    return data


def check_versions(versions: object) -> list[int]:
    """A version list, as Vault's comma-separated int field takes it: ``[1, 2]``, ``["1", "2"]``, ``"1,2"``,
    ``["1,2", 3]`` or ``1``. Sorted, without duplicates; the one parser of every route that takes versions."""
    items = versions if isinstance(versions, list) else [versions]
    found: list[int] = []
    for item in items[: _MAX_VERSIONS + 1]:
        if isinstance(item, int) and not isinstance(item, bool):
            found.append(item)
        elif isinstance(item, str) and len(item) <= _MAX_VERSIONS * 11:
            for part in item.split(","):
                part = part.strip()
                if not part:
                    continue
                if not (part.isascii() and part.isdigit() and len(part) <= 10):
                    raise BadRequest(_VERSIONS_MESSAGE)
                found.append(int(part))
        else:
            raise BadRequest(_VERSIONS_MESSAGE)
    if not found or len(found) > _MAX_VERSIONS or not all(0 < v < 2**31 for v in found):
        raise BadRequest(_VERSIONS_MESSAGE)
    return sorted(set(found))
