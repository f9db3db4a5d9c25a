"""A PostgreSQL cluster of the test's own, so a test may kill, stop and freeze it.

The shared test server (``CVAULT_TEST_DATABASE_URL``) belongs to everyone running
tests; a fault test needs a server it can ``pg_ctl stop -m immediate`` and
SIGSTOP without hurting anyone else. The machine's binaries are used
(``/usr/lib/postgresql/*/bin``, or whatever ``initdb`` is on ``PATH``), and
pgserver's when there are none. As root, the server runs as the ``postgres``
system user (PostgreSQL refuses to run as root), or pgserver's ``pgserver`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["Cluster", "postgres_binaries"]


def postgres_binaries() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    from pgserver._commands import POSTGRES_BIN_PATH  # the wheel's own binaries

    return Path(POSTGRES_BIN_PATH)


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "-s", "/bin/sh", "pgserver"], check=True, capture_output=True)
    return "pgserver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cluster:
    """``initdb`` in a temporary directory, then start/stop/kill/freeze on a free TCP port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "pgdata"
        self.bin = postgres_binaries()
        self.port = _free_port()
        self.user = _system_user()
        self._log = root / "server.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=check,
            capture_output=True,
            text=True,
            user=self.user,
            timeout=60,
        )

    def init(self) -> None:
        self.root.chmod(0o755)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "-N")
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                "max_connections = 100\nfsync = on\nshared_buffers = 32MB\n"
            )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self._log), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "30", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.pgdata), "status", check=False).returncode == 0

    def postmaster_pid(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().split()[0])

    def _all_pids(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, WAL writer...)."""
        parent = self.postmaster_pid()
        children = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
        return [parent, *map(int, children)]

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the whole server (postmaster and backends) for the block, then SIGCONT."""
        pids = self._all_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


_PREFIX = "cvault-faults-pg-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_clusters() -> None:
    """Stop and delete clusters left by a test run that was killed before its teardown (its owner is gone)."""
    for root in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        try:
            owner = int((root / "owner.pid").read_text())
        except (OSError, ValueError):
            # No owner recorded: a run older than this rule, or one a moment from writing it.
            if time.time() - root.stat().st_mtime < 3600:
                continue
            owner = 0
        if owner and _alive(owner):
            continue
        stale = Cluster(root)
        if (stale.pgdata / "postmaster.pid").exists():
            stale.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def temporary_cluster() -> Iterator[Cluster]:
    reap_stale_clusters()
    root = Path(tempfile.mkdtemp(prefix=_PREFIX))
    (root / "owner.pid").write_text(str(os.getpid()))
    cluster = Cluster(root)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop("immediate")
        # Wait for the postmaster to go before deleting its directory.
        deadline = time.monotonic() + 10
        while (cluster.pgdata / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
