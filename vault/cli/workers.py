"""``cvault serve ... --workers N``: N forked processes sharing one listen port.

Python serves requests on one core per process, so a service scales on one
machine by running several processes. Each child builds its own app (its own
pool, caches and keys) and binds the port with ``SO_REUSEPORT``; the kernel
spreads new connections across the children. The parent only forwards signals
and watches: a child that exits while the service is meant to run (a start
that fails, a crash) stops the others and the parent exits 1, so a supervisor
sees one failed service rather than a silently smaller one.

Forking (not spawning) keeps ``master_key_command`` to one run: the key it
printed is inherited, and each child opens its keys itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

__all__ = ["run_workers"]

log = logging.getLogger("cvault")

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How a child may end once the parent was told to stop.
_CLEAN_STOP = {0, 130, -signal.SIGINT, -signal.SIGTERM}


def _child(index: int, count: int, serve_one: Callable[[int, int], int]) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        code = serve_one(index, count)
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        from .errors import report_error

        code = report_error(exc, json_output=False)
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_workers(count: int, serve_one: Callable[[int, int], int], *, name: str) -> int:
    """Fork ``count`` children running ``serve_one(index, count)``; wait for them; the exit status."""
    children: dict[int, int] = {}
    stopping = False
    parent = os.getpid()

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if os.getpid() != parent:  # a child between fork and resetting its handlers: not its siblings' business
            return
        if signum != signal.SIGHUP:
            stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):  # it has just exited; os.wait reports it
                os.kill(pid, signum)

    # Installed before forking so no signal is lost; each child resets them first thing.
    previous = {signum: signal.signal(signum, forward) for signum in _FORWARDED}
    status = 0
    try:
        for index in range(count):
            if stopping:
                break
            pid = os.fork()
            if pid == 0:
                _child(index, count, serve_one)
            children[pid] = index
        while children:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            index = children.pop(pid, -1)
            code = os.waitstatus_to_exitcode(wait_status)
            if not stopping:
                log.error(
                    "%s worker %d/%d (pid %d) exited with status %d; stopping the others",
                    name,
                    index + 1,
                    count,
                    pid,
                    code,
                )
                stopping = True
                status = 1
                forward(signal.SIGTERM, None)
            elif code not in _CLEAN_STOP:
                status = 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status
