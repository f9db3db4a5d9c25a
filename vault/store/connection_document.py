"""The value of a secret rotated against PostgreSQL: a connection URL or a JSON document (docs/rotation.md).

Parsed when a rotation policy is set (so a value the rotator could not use is refused then, not at 3 a.m.) and
each time a rotation is claimed (the rotator is told the connection's public part, never the password); rendered
by the rotator in the same form with the new user and password. Error messages never quote the password.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from vault.errors import BadRequest
from vault.types import Random

__all__ = [
    "CLONE_SUFFIX",
    "PASSWORD_ALPHABET",
    "ConnectionDocument",
    "alternate_user",
    "new_password",
]

# Letters and digits only: nothing a URL, a libpq keyword string, a shell or a YAML file has to escape.
PASSWORD_ALPHABET = string.ascii_letters + string.digits
CLONE_SUFFIX = "_clone"
SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_JSON_FIELDS = frozenset({"host", "port", "dbname", "user", "password", "sslmode"})
_ROLE = re.compile(r"[A-Za-z_][A-Za-z0-9_$.-]{0,56}")  # 63 bytes at most once "_clone" is added
_HOST = re.compile(r"[A-Za-z0-9._:-]{1,253}")
_DBNAME = re.compile(r"[A-Za-z0-9_$.-]{1,63}")
_PORT = re.compile(r"[0-9]{1,5}")
MAX_DOCUMENT = 4096


def new_password(length: int, random: Random) -> str:
    """``length`` characters drawn uniformly from :data:`PASSWORD_ALPHABET` (rejection sampling of CSPRNG bytes)."""
    limit = 256 - 256 % len(PASSWORD_ALPHABET)
    out: list[str] = []
    while len(out) < length:
        out.extend(PASSWORD_ALPHABET[b % len(PASSWORD_ALPHABET)] for b in random(length * 2) if b < limit)
    return "".join(out[:length])


def alternate_user(user: str) -> str:
    """The other role of the alternating strategy: ``app`` <-> ``app_clone``."""
    return user.removesuffix(CLONE_SUFFIX) if user.endswith(CLONE_SUFFIX) else user + CLONE_SUFFIX


def _bad(what: str) -> BadRequest:
    return BadRequest(f"the secret's value is not a PostgreSQL connection document: {what} (docs/rotation.md)")


@dataclass(frozen=True)
class ConnectionDocument:
    """A PostgreSQL connection: where, as whom, with which password, and the form it was written in."""

    form: str  # "url" or "json"
    host: str
    port: int
    dbname: str
    user: str
    password: str = field(repr=False)
    sslmode: str | None = None

    @classmethod
    def parse(cls, text: str) -> ConnectionDocument:
        if len(text) > MAX_DOCUMENT:
            raise _bad(f"longer than {MAX_DOCUMENT} characters")
        stripped = text.strip()
        if stripped.startswith("{"):
            return cls._from_json(stripped)
        if stripped.startswith(("postgres://", "postgresql://")):
            return cls._from_url(stripped)
        raise _bad("neither a postgresql:// URL nor a JSON object")

    @classmethod
    def _from_url(cls, text: str) -> ConnectionDocument:
        try:
            parts = urlsplit(text)
            port = parts.port or 5432
        except ValueError:
            raise _bad("the URL's port is not a number") from None
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if set(query) - {"sslmode"}:
            raise _bad("the URL may carry only the sslmode parameter")
        if parts.fragment:
            raise _bad("the URL has a fragment")
        return cls._checked(
            "url",
            parts.hostname or "",
            port,
            unquote(parts.path.removeprefix("/")),
            unquote(parts.username or ""),
            unquote(parts.password or ""),
            query.get("sslmode"),
        )

    @classmethod
    def _from_json(cls, text: str) -> ConnectionDocument:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # deep nesting fits in MAX_DOCUMENT and would be a 500
            raise _bad("not valid JSON") from None
        if not isinstance(data, dict):
            raise _bad("not a JSON object")
        unknown = set(data) - _JSON_FIELDS
        if unknown:
            raise _bad(f"unknown fields {sorted(unknown)!r}; allowed: {sorted(_JSON_FIELDS)!r}")
        port = data.get("port", 5432)
        # ASCII digits only: str.isdigit() accepts "²", which int() refuses (a 500 at set, and at every claim).
        if isinstance(port, str) and _PORT.fullmatch(port):
            port = int(port)
        if not isinstance(port, int) or isinstance(port, bool):
            raise _bad("port must be a number")
        values = [data.get(k, "") for k in ("host", "dbname", "user", "password")]
        sslmode = data.get("sslmode")
        if not all(isinstance(v, str) for v in values) or not isinstance(sslmode, str | None):
            raise _bad("host, dbname, user, password and sslmode must be strings")
        host, dbname, user, password = values
        return cls._checked("json", host, port, dbname, user, password, sslmode)

    @classmethod
    def _checked(
        cls, form: str, host: str, port: int, dbname: str, user: str, password: str, sslmode: str | None
    ) -> ConnectionDocument:
        if not _HOST.fullmatch(host):
            raise _bad("no host, or a host that is not a name or an address")
        if not 0 < port < 65536:
            raise _bad("port out of range")
        if not _DBNAME.fullmatch(dbname):
            raise _bad("no database name (dbname), or one with unusual characters")
        if not _ROLE.fullmatch(user):
            raise _bad("no user, or a role name that is not a plain identifier of at most 57 characters")
        if not password:
            raise _bad("no password")
        if sslmode is not None and sslmode not in SSL_MODES:
            raise _bad(f"sslmode must be one of {sorted(SSL_MODES)!r}")
        return cls(form, host, port, dbname, user, password, sslmode)

    def public(self) -> dict[str, Any]:
        """Everything but the password: what the store tells a rotator about the current credential."""
        return {
            "form": self.form,
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "sslmode": self.sslmode,
        }

    @classmethod
    def from_public(cls, public: dict[str, Any], *, user: str, password: str) -> ConnectionDocument:
        """The document :meth:`public` described, as ``user`` with ``password`` (checked like a parsed one)."""
        try:
            return cls._checked(
                str(public["form"]),
                str(public["host"]),
                int(public["port"]),
                str(public["dbname"]),
                user,
                password,
                public.get("sslmode"),
            )
        except (KeyError, TypeError, ValueError):
            raise _bad("the store described the connection incompletely") from None

    def pin(self, strategy: str) -> str:
        """What a rotation policy fixes when it is set: the endpoint and the role (for ``alternating``, the pair's
        base role), so that a later value naming another role or server is not rotated (docs/rotation.md)."""
        role = self.user.removesuffix(CLONE_SUFFIX) if strategy == "alternating" else self.user
        return json.dumps(
            {"host": self.host, "port": self.port, "dbname": self.dbname, "sslmode": self.sslmode, "role": role},
            sort_keys=True,
        )

    def with_credentials(self, user: str, password: str) -> ConnectionDocument:
        return replace(self, user=user, password=password)

    def render(self) -> str:
        """The document in the form it was written in (URL or JSON)."""
        if self.form == "json":
            body: dict[str, Any] = {
                "host": self.host,
                "port": self.port,
                "dbname": self.dbname,
                "user": self.user,
                "password": self.password,
            }
            if self.sslmode is not None:
                body["sslmode"] = self.sslmode
            return json.dumps(body)
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?sslmode={self.sslmode}" if self.sslmode else ""
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{host}:{self.port}/"
            f"{quote(self.dbname, safe='')}{query}"
        )
