"""``cvault serve authority --workers N``: real processes sharing one port with SO_REUSEPORT (issue 18)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import functools
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import unused_port

from tests.support.cvault_command import cvault_command, cvault_env
from vault.cli.workers import MAX_RESTARTS, run_workers

BOUND = 60.0  # a generous functional bound: the machine is shared


def _env(database_url: str, port: int) -> dict[str, str]:
    return cvault_env(
        {
            "CVAULT_DATABASE_URL": database_url,
            "CVAULT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
            "CVAULT_AUTHORITY_LISTEN": f"127.0.0.1:{port}",
            "CVAULT_AUTHORITY_URL": f"http://127.0.0.1:{port}",
            "CVAULT_LOG_FORMAT": "json",
        }
    )


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


class Workers:
    """The parent process and every JSON line its children write to the shared stderr."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.entries: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            try:
                self.entries.append(json.loads(line))
            except ValueError:
                self.entries.append({"message": line.decode(errors="replace"), "pid": None})
            self.changed.set()

    async def wait_for(self, predicate: Any) -> None:
        async with asyncio.timeout(BOUND):
            while not predicate():
                if self.reader.done():
                    raise AssertionError(f"the service exited early:\n{self.text()}")
                self.changed.clear()
                await self.changed.wait()

    def listening_pids(self) -> set[int]:
        return {e["pid"] for e in self.entries if "listening on" in e.get("message", "")}

    def answered_by(self) -> set[int]:
        return {e["pid"] for e in self.entries if e.get("logger") == "cvault.access" and e.get("route") == "/healthz"}

    def text(self) -> str:
        return "\n".join(json.dumps(e) for e in self.entries)


async def _start(database_url: str, port: int, workers: int) -> Workers:
    process = await asyncio.create_subprocess_exec(
        *cvault_command("serve", "authority", "--workers", str(workers)),
        env=_env(database_url, port),
        stderr=asyncio.subprocess.PIPE,
    )
    service = Workers(process)
    await service.wait_for(lambda: len(service.listening_pids()) == workers)
    return service


async def test_two_workers_share_the_port_and_stop_on_sigterm(database_url: str) -> None:
    port = unused_port()
    service = await _start(database_url, port, 2)
    try:
        pids = service.listening_pids()
        assert len(pids) == 2 and service.process.pid not in pids
        assert {_parent_of(pid) for pid in pids} == {service.process.pid}
        assert all(f"authority worker {n}/2" in service.text() for n in (1, 2))
        # A new connection per request: the kernel spreads connections, not requests, across the workers.
        async with asyncio.timeout(BOUND):
            while service.answered_by() != pids:
                connector = aiohttp.TCPConnector(force_close=True)
                async with aiohttp.ClientSession(connector=connector) as http:
                    for _ in range(10):
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                            assert resp.status == 200
                await asyncio.sleep(0.05)
        service.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(service.process.wait(), BOUND) == 0
        assert not any(_alive(pid) for pid in pids)
    finally:
        if service.process.returncode is None:
            service.process.kill()
            await service.process.wait()
        await service.reader


async def test_a_worker_that_dies_is_replaced_and_the_others_keep_serving(database_url: str) -> None:
    port = unused_port()
    service = await _start(database_url, port, 2)
    try:
        victim, survivor = sorted(service.listening_pids())
        os.kill(victim, signal.SIGKILL)
        await service.wait_for(lambda: len(service.listening_pids() - {victim}) == 2)
        replacement = (service.listening_pids() - {victim, survivor}).pop()
        assert _alive(survivor) and _parent_of(replacement) == service.process.pid
        assert service.process.returncode is None
        assert f"(pid {victim}) exited with status -9; starting another (1 of at most 5" in service.text()
        service.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(service.process.wait(), BOUND) == 0
    finally:
        if service.process.returncode is None:
            service.process.kill()
            await service.process.wait()
        await service.reader


def test_a_worker_that_cannot_start_fails_the_service(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            cvault_command("serve", "authority", "--workers", "2"),
            env=_env(database_url, port),
            capture_output=True,
            text=True,
            timeout=BOUND,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "more than 5 replacements within 60 s: stopping the others" in result.stderr
    assert "listening on" not in result.stderr and "Traceback" not in result.stderr


def test_workers_must_be_a_positive_count() -> None:
    result = subprocess.run(
        cvault_command("serve", "store", "--workers", "0"), capture_output=True, text=True, timeout=BOUND, check=False
    )
    assert result.returncode == 2
    assert "whole number of processes from 1 to 64" in result.stderr


def _supervise(signum: int, serve_one: Callable[[int, int], int], *, max_restarts: int = MAX_RESTARTS) -> None:
    """In a process of its own: ``run_workers`` with one worker that has the parent forward ``signum`` to it
    before it resets the handlers it inherited (held there until the signal is pending or was taken)."""
    os.setpgrp()  # the test ends the whole group if the signal is lost
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid == 0:
            os.kill(os.getppid(), signum)
            deadline = time.monotonic() + BOUND / 2
            while signum not in signal.sigpending() and time.monotonic() < deadline:
                time.sleep(0.01)
        return pid

    os.fork = fork
    os._exit(run_workers(1, serve_one, name="test", max_restarts=max_restarts))


def _exit_status(target: Callable[[], None]) -> int | None:
    """The exit status of ``target`` run in a forked process; ``None`` if it still ran after :data:`BOUND`."""
    process = multiprocessing.get_context("fork").Process(target=target)
    process.start()
    process.join(BOUND)
    status = process.exitcode
    with contextlib.suppress(ProcessLookupError):  # whatever it left behind (a lost worker), ended
        os.killpg(process.pid, signal.SIGKILL)
    process.join()
    return status


def _serve_until_a_signal(index: int, count: int) -> int:
    while True:
        time.sleep(3600)


def test_a_stop_forwarded_to_a_worker_before_its_handlers_are_reset_still_stops_it() -> None:
    # Before, the worker's inherited handler took the SIGTERM and did nothing: it served on, the parent waited.
    assert _exit_status(functools.partial(_supervise, signal.SIGTERM, _serve_until_a_signal)) == 0


def _serve_then_stop(index: int, count: int) -> int:
    os.kill(os.getppid(), signal.SIGTERM)  # served: now stop, cleanly
    return _serve_until_a_signal(index, count)


def test_a_reload_signal_does_not_end_a_worker_that_serves_no_tls() -> None:
    # Without TLS nothing reloads; SIGHUP's default would end the worker, and the parent (allowed no
    # replacement here) would exit 1.
    assert _exit_status(functools.partial(_supervise, signal.SIGHUP, _serve_then_stop, max_restarts=0)) == 0


def _supervise_with_a_failing_fork() -> None:
    """In a process of its own: two workers, the second of which cannot be forked; 4 if a worker is left over."""
    os.setpgrp()
    real_fork = os.fork
    forks = 0

    def fork() -> int:
        nonlocal forks
        forks += 1
        if forks == 2:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return real_fork()

    os.fork = fork
    try:
        status = run_workers(2, _serve_until_a_signal, name="test")
    except OSError:
        os._exit(3)  # before: the error escaped and the first worker served on, orphaned
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        os._exit(status)
    os._exit(4)


def test_a_worker_that_cannot_be_forked_stops_the_others_and_fails_the_service() -> None:
    assert _exit_status(_supervise_with_a_failing_fork) == 1
