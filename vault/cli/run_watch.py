"""``cvault run`` as a supervisor: ``--watch`` for new versions, ``--env-file`` / ``--mount`` files.

Plain ``cvault run`` execs the command (nothing of cvault stays behind). With
``--watch``, or with a secrets file that must be removed at the end, cvault
stays as the command's parent instead:

- it polls the store every ``--interval`` seconds for the secrets' current
  versions only (``POST .../versions``: no value is read, one
  ``secrets.versions`` audit event per poll), and reads the values (one batch
  read) only when a version changed; when any injected secret has a new current
  version (a rotation was promoted) it restarts the command with the new
  environment, or with ``--signal HUP`` rewrites the files and sends that
  signal instead;
- a failed poll is retried with exponential backoff (up to ten intervals) while
  the command keeps running with what it has;
- the client's discharge cache refreshes the authority's discharge in the
  background before it lapses (:mod:`vault.client.discharges`);
- signals cvault gets (SIGINT, SIGTERM, SIGHUP) go to the command; the
  command's exit ends ``cvault run`` with its status, and the files are removed.

Files are written with mode 0600 through a temporary name and renamed into
place, so a reader never sees half a file; ``--env-file`` holds
``NAME="value"`` lines (dotenv quoting) of the secrets' variables only, ``--mount`` a JSON object of secret
names to values.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vault.errors import ConfigError, VaultError

from .output import replace_private

__all__ = ["Supervisor", "WatchOptions", "dotenv_lines", "write_private_file"]

_GRACE = 10.0
"""Seconds a command has to exit after SIGTERM before it is killed (on a restart)."""


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("$", "\\$")
    return f'"{escaped}"'


def dotenv_lines(env: Mapping[str, str]) -> str:
    return "".join(f"{name}={_quote(env[name])}\n" for name in sorted(env))


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically (a temporary name, then rename)."""
    replace_private(path, text.encode("utf-8"))


@dataclass(frozen=True)
class WatchOptions:
    watch: bool
    interval: float
    signal: signal.Signals | None
    env_file: Path | None
    mount: Path | None


Fetch = Callable[[], Awaitable[tuple[dict[str, str], dict[str, int]]]]
"""One read: ``(secrets by name, their current versions)``."""

Poll = Callable[[], Awaitable[dict[str, int]]]
"""One poll: the secrets' current versions, without their values."""

Variables = Callable[[Mapping[str, str]], dict[str, str]]
"""Secrets by name -> the variables they become (``db/url`` -> ``DB_URL``, or the ``--map`` names)."""


class Supervisor:
    def __init__(
        self,
        command: list[str],
        options: WatchOptions,
        fetch: Fetch,
        variables: Variables,
        base: Mapping[str, str],
        poll: Poll,
    ) -> None:
        self._command = command
        self._options = options
        self._fetch = fetch
        self._poll = poll
        self._variables = variables
        self._base = dict(base)
        self._child: asyncio.subprocess.Process | None = None
        self._secrets: dict[str, str] = {}

    def _say(self, line: str) -> None:
        print(f"cvault run: {line}", file=sys.stderr, flush=True)

    def _write_files(self, secrets: Mapping[str, str]) -> None:
        if self._options.env_file is not None:
            # The secrets' variables only: the rest of the environment (PATH, HOME, the CVAULT_* URLs)
            # is the command's, not something to copy into a file.
            write_private_file(self._options.env_file, dotenv_lines(self._variables(secrets)))
        if self._options.mount is not None:
            write_private_file(self._options.mount, json.dumps(dict(secrets), indent=2, sort_keys=True) + "\n")

    def _remove_files(self) -> None:
        for path in (self._options.env_file, self._options.mount):
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    async def _start(self, secrets: Mapping[str, str]) -> asyncio.subprocess.Process:
        try:
            env = {**self._base, **self._variables(secrets)}
            return await asyncio.create_subprocess_exec(*self._command, env=env)
        except OSError as exc:
            raise ConfigError(f"cannot run {self._command[0]!r}: {exc.strerror}") from None

    async def _stop_child(self, child: asyncio.subprocess.Process) -> None:
        if child.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            child.terminate()
        try:
            await asyncio.wait_for(child.wait(), _GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()

    def _forward(self, signum: int) -> None:
        if self._child is not None and self._child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._child.send_signal(signum)

    async def run(self, secrets: dict[str, str], versions: dict[str, int]) -> int:
        loop = asyncio.get_running_loop()
        forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        for signum in forwarded:
            loop.add_signal_handler(signum, self._forward, signum)
        try:
            self._secrets = dict(secrets)
            self._write_files(secrets)
            self._child = await self._start(secrets)
            if not self._options.watch:
                return await self._child.wait()
            return await self._watch(versions)
        finally:
            for signum in forwarded:
                loop.remove_signal_handler(signum)
            if self._child is not None:
                await self._stop_child(self._child)
            self._remove_files()

    async def _watch(self, versions: dict[str, int]) -> int:
        interval = self._options.interval
        wait = interval
        while True:
            assert self._child is not None
            exited = asyncio.ensure_future(self._child.wait())
            done, _ = await asyncio.wait({exited}, timeout=wait)
            if done:
                return exited.result()
            exited.cancel()
            try:
                # Versions first (cheap, and not a read of any value); values only when one moved.
                # Unknown versions (a start from the fallback cache) always read the values.
                if versions and await self._poll() == versions:
                    wait = interval
                    continue
                secrets, current = await self._fetch()
            except VaultError as exc:
                wait = min(wait * 2, interval * 10)
                self._say(f"cannot check for new versions: {exc.message} ({exc.code}); next try in {wait:g} s")
                continue
            wait = interval
            # Versions decide; values too, for a start from the fallback cache (versions unknown).
            changed = sorted(
                n
                for n in secrets.keys() | self._secrets.keys()
                if secrets.get(n) != self._secrets.get(n) or (n in versions and current.get(n) != versions[n])
            )
            versions = current
            if not changed:
                continue
            self._secrets = secrets
            if self._options.signal is not None:
                self._write_files(secrets)
                self._say(f"new version of {', '.join(changed)}; sending {self._options.signal.name}")
                with contextlib.suppress(ProcessLookupError):
                    self._child.send_signal(self._options.signal)
                continue
            self._say(f"new version of {', '.join(changed)}; restarting {self._command[0]}")
            await self._stop_child(self._child)
            self._write_files(secrets)
            self._child = await self._start(secrets)
