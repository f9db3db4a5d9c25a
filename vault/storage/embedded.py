"""An embedded PostgreSQL from the ``pgserver`` wheel, for ``cvault dev`` and the tests.

pgserver runs the server as a child of nobody in particular: it starts (or
reuses) a postmaster for a data directory and stops it when the last process
holding a handle calls :meth:`EmbeddedPostgres.stop` or exits. Connections go
over a Unix socket in the data directory; no TCP port is opened.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any

from vault.errors import Unavailable

from .database import with_database

__all__ = ["EmbeddedPostgres", "ensure_system_user", "find_useradd"]

# Run as root, pgserver runs PostgreSQL (which refuses root) as this user, made with useradd when missing.
SYSTEM_USER = "pgserver"
# Where useradd lives when the caller's PATH lacks it (a root shell under `env -i` has no /usr/sbin).
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def find_useradd(path: str, sbin: tuple[str, ...] = _SBIN) -> str | None:
    """``useradd`` in ``path`` or, failing that, in the system's ``sbin`` directories."""
    return shutil.which("useradd", path=os.pathsep.join([path, *sbin]))


def ensure_system_user(name: str = SYSTEM_USER, *, path: str | None = None, sbin: tuple[str, ...] = _SBIN) -> None:
    """As root, make sure system user ``name`` exists (pgserver's own attempt needs useradd in ``$PATH``)."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    search = os.environ.get("PATH", "") if path is None else path
    useradd = find_useradd(search, sbin)
    if useradd is None:
        raise Unavailable(
            f"the embedded PostgreSQL cannot run as root, and there is no system user {name!r} to run it as, nor "
            f"useradd to create one (searched {os.pathsep.join([search, *sbin])}); create the user, or run cvault dev "
            "as a normal user"
        )
    done = subprocess.run(  # noqa: S603 (a fixed command)
        [useradd, "--system", "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"status {done.returncode}"]
        raise Unavailable(f"the embedded PostgreSQL needs system user {name!r}; {useradd} failed: {last[0]}")


def _cause(exc: BaseException, log: Path) -> str:
    """What went wrong in words, with the server log's last lines when there is one."""
    if isinstance(exc, FileNotFoundError) and exc.filename:
        cause = f"{exc.filename} not found"
    elif isinstance(exc, subprocess.CalledProcessError):
        command = exc.cmd[0] if isinstance(exc.cmd, list | tuple) else str(exc.cmd).split()[0]
        cause = f"{Path(str(command)).name} exited with status {exc.returncode}"
    elif isinstance(exc, OSError) and exc.strerror:
        cause = exc.strerror
    else:
        cause = type(exc).__name__
    try:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    except OSError:
        tail = []
    return cause + (f"; {log} ends: " + " / ".join(tail) if tail else "")


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
        ensure_system_user()
        try:
            server = get_server(pgdata, cleanup_mode="delete" if delete_on_stop else "stop")
        except (OSError, subprocess.SubprocessError, AssertionError) as exc:
            raise Unavailable(
                f"the embedded PostgreSQL in {pgdata} did not start: {_cause(exc, pgdata / 'log')}"
            ) from exc
        return cls(pgdata, server)

    def dsn(self, database: str = "postgres") -> str:
        uri: str = self._server.get_uri()
        return with_database(uri, database)

    def stop(self) -> None:
        """Stop the server unless another process still uses it."""
        self._server.cleanup()
