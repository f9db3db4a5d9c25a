"""An embedded PostgreSQL from the ``pgserver`` wheel, for ``cvault dev`` and the tests.

pgserver runs the server as a child of nobody in particular: it starts (or
reuses) a postmaster for a data directory and stops it when the last process
holding a handle calls :meth:`EmbeddedPostgres.stop` or exits. Connections go
over a Unix socket in the data directory; no TCP port is opened.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from vault.errors import Unavailable

from .database import with_database

__all__ = ["EmbeddedPostgres"]


class EmbeddedPostgres:
    """A running embedded server. Blocking; async callers use ``asyncio.to_thread``."""

    def __init__(self, pgdata: Path, server: Any) -> None:
        self.pgdata = pgdata
        self._server = server

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(pgdata={str(self.pgdata)!r})"

    @classmethod
    def start(cls, pgdata: Path, *, delete_on_stop: bool = False) -> EmbeddedPostgres:
        """Initialise ``pgdata`` if it is new, then start the server (or join a running one)."""
        # Deferred: importing pgserver inspects the platform and sets up a file lock. It asks
        # platformdirs for a runtime directory as it is imported, which warns (RuntimeDirWarning)
        # whenever $XDG_RUNTIME_DIR is unset, as in most containers and `ssh` sessions, and then
        # falls back to a private directory: nothing for the user of `cvault dev` to act on.
        import warnings

        import platformdirs

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", platformdirs.RuntimeDirWarning)
            from pgserver.postgres_server import get_server

        pgdata = pgdata.expanduser().resolve()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            server = get_server(pgdata, cleanup_mode="delete" if delete_on_stop else "stop")
        except (OSError, subprocess.SubprocessError, AssertionError) as exc:
            raise Unavailable(
                f"the embedded PostgreSQL in {pgdata} did not start ({type(exc).__name__}); see {pgdata / 'log'}"
            ) from exc
        return cls(pgdata, server)

    def dsn(self, database: str = "postgres") -> str:
        uri: str = self._server.get_uri()
        return with_database(uri, database)

    def stop(self) -> None:
        """Stop the server unless another process still uses it."""
        self._server.cleanup()
