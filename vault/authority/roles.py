"""Membership roles, the permission masks they grant, and organization slugs."""

from __future__ import annotations

import re
from enum import StrEnum

from vault.errors import BadRequest
from vault.macaroon.access import AUDIT, CONTROL, CREATE, DELETE, READ, WRITE

__all__ = ["ROLE_MASKS", "Role", "check_slug", "parse_role"]


class Role(StrEnum):
    OWNER = "owner"
    OPERATOR = "operator"
    READER = "reader"
    AUDITOR = "auditor"

    @property
    def mask(self) -> int:
        return ROLE_MASKS[self]


ROLE_MASKS: dict[Role, int] = {
    Role.OWNER: READ | WRITE | CREATE | DELETE | CONTROL | AUDIT,
    Role.OPERATOR: READ | WRITE | CREATE | DELETE,
    Role.READER: READ,
    Role.AUDITOR: AUDIT,
}

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")


def parse_role(text: object) -> Role:
    if isinstance(text, str):
        try:
            return Role(text)
        except ValueError:
            pass
    raise BadRequest(f"role must be one of {', '.join(r.value for r in Role)}")


def check_slug(slug: object) -> str:
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise BadRequest("slug must be 2 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit")
    return slug
