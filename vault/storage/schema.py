"""The PostgreSQL schemas cvault owns: one per service, so each can get its own role."""

from __future__ import annotations

__all__ = ["SCHEMAS", "check_schema", "quote_identifier"]

SCHEMAS: tuple[str, ...] = ("authority", "store")


def check_schema(schema: str) -> str:
    """Return ``schema`` if it is one of ours; SQL text is built from it, so this is a guard."""
    if schema not in SCHEMAS:
        raise ValueError(f"unknown schema {schema!r}; expected one of {', '.join(SCHEMAS)}")
    return schema


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
