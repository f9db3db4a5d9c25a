"""What ``cvault keys status`` reports: every KEK version and stored key of a schema, with its age.

Read-only and for operators: nothing here runs on a request. Ages come from the
database's clock (``now() - created_at``), so a skewed client clock does not
make keys look older or younger than they are. Data keys (one per secret
version) are summed up per purpose instead of listed one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

import asyncpg

from .pool import database_errors
from .schema import check_schema

__all__ = ["KekStatus", "KeyStatus", "SchemaKeys", "read_key_status"]

# Purposes with one key per stored item: counted, not listed.
SUMMED_PURPOSES = frozenset({"store-dek"})


@dataclass(frozen=True)
class KekStatus:
    version: int
    state: str  # active | draining | retired
    created_at: datetime
    age_seconds: float
    keys: int  # wrapped keys still under this version
    wrapped: bytes  # the KEK wrapped under a master key (to tell which one), never unwrapped here


@dataclass(frozen=True)
class KeyStatus:
    purpose: str
    key_id: int | None  # None for a summed purpose
    count: int
    created_at: datetime  # the oldest, for a summed purpose
    age_seconds: float
    retired_at: datetime | None
    org_id: int | None  # the org whose tokens a store root key signs


@dataclass(frozen=True)
class SchemaKeys:
    schema: str
    keks: tuple[KekStatus, ...]
    keys: tuple[KeyStatus, ...]


@dataclass(frozen=True)
class _Queries:
    keks: str
    keys: str
    summed: str


@cache
def _queries(schema: str) -> _Queries:
    s = check_schema(schema)  # a closed set: safe to build SQL from
    org_of = "(SELECT o.org_id FROM store.org_root_keys AS o WHERE o.key_id = k.id)" if s == "store" else "NULL::bigint"
    return _Queries(
        keks=(
            "SELECT v.version, v.state, v.created_at, extract(epoch FROM now() - v.created_at)::float8 AS age, "  # noqa: S608
            f"v.wrapped, (SELECT count(*) FROM {s}.wrapped_keys AS k WHERE k.kek_version = v.version) AS keys "
            f"FROM {s}.kek_versions AS v ORDER BY v.version"
        ),
        keys=(
            "SELECT k.id, k.purpose, k.created_at, extract(epoch FROM now() - k.created_at)::float8 AS age, "  # noqa: S608
            f"k.retired_at, {org_of} AS org_id "
            f"FROM {s}.wrapped_keys AS k WHERE NOT (k.purpose = ANY($1::text[])) ORDER BY k.purpose, k.id"
        ),
        summed=(
            "SELECT purpose, count(*) AS n, min(created_at) AS oldest, "  # noqa: S608
            "extract(epoch FROM now() - min(created_at))::float8 AS age "
            f"FROM {s}.wrapped_keys WHERE purpose = ANY($1::text[]) GROUP BY purpose ORDER BY purpose"
        ),
    )


async def read_key_status(pool: asyncpg.Pool, schema: str) -> SchemaKeys:
    queries = _queries(schema)
    summed = sorted(SUMMED_PURPOSES)
    with database_errors():
        kek_rows = await pool.fetch(queries.keks)
        key_rows = await pool.fetch(queries.keys, summed)
        sum_rows = await pool.fetch(queries.summed, summed)
    keks = tuple(
        KekStatus(r["version"], r["state"], r["created_at"], r["age"], r["keys"], r["wrapped"]) for r in kek_rows
    )
    keys = [
        KeyStatus(r["purpose"], r["id"], 1, r["created_at"], r["age"], r["retired_at"], r["org_id"]) for r in key_rows
    ]
    keys += [KeyStatus(r["purpose"], None, r["n"], r["oldest"], r["age"], None, None) for r in sum_rows]
    return SchemaKeys(schema, keks, tuple(keys))
