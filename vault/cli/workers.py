"""``cvault serve ... --workers N``: N forked processes sharing one listen port.

Python serves requests on one core per process, so a service scales on one
machine by running several processes. Each child builds its own app (its own
pool, caches and keys) and binds the port with ``SO_REUSEPORT``; the kernel
spreads new connections across the children. The parent only forwards signals
and watches: a child that exits while the service is meant to run (a crash, a
kill -9, the OOM killer) is replaced by a new one with the same index, and the
others keep serving, so a dead worker costs only its own in-flight requests.
Replacements are bounded: past :data:`MAX_RESTARTS` within
:data:`RESTART_WINDOW` seconds (a worker that cannot start, a crash that
repeats) the parent stops the others and exits 1, so a supervisor sees one
failed service rather than a process that restarts forever.

Forking (not spawning) keeps ``master_key_command`` to one run: the key it
printed is inherited, and each child opens its keys itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from types import FrameType

__all__ = ["MAX_RESTARTS", "RESTART_WINDOW", "run_workers"]

log = logging.getLogger("cvault")

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How a child may end once the parent was told to stop.
_CLEAN_STOP = {0, 130, -signal.SIGINT, -signal.SIGTERM}

MAX_RESTARTS = 5
"""Replacements of dead workers allowed within :data:`RESTART_WINDOW`; one more and the service exits 1."""
RESTART_WINDOW = 60.0


def _child(index: int, count: int, serve_one: Callable[[int, int], int], mask: set[int | signal.Signals]) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # A reload (SIGHUP) means something only to a worker serving TLS, whose runner installs its handler; by
        # default it would end the worker (a plain-HTTP one, or one still starting) and cost a replacement.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        # Only now: a stop the parent forwarded since the fork was held (run_workers' start) and ends us here.
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
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


def run_workers(
    count: int,
    serve_one: Callable[[int, int], int],
    *,
    name: str,
    max_restarts: int = MAX_RESTARTS,
    window: float = RESTART_WINDOW,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Fork ``count`` children running ``serve_one(index, count)``, replacing any that dies; the exit status."""
    children: dict[int, int] = {}
    restarts: deque[float] = deque()  # when each recent replacement was started
    stopping = False
    status = 0
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

    def start(index: int) -> bool:
        """Fork worker ``index`` unless told to stop; False if it cannot be forked (out of memory or processes)."""
        # The forwarded signals wait (blocked) across the fork: the parent's handler runs once the child is in
        # `children`, so `forward` reaches it, and the child's once it has reset the handlers it inherited (an
        # inherited `forward` would swallow a stop, and the child would serve on while the parent waits for it).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
        try:
            if stopping:  # told to stop since the caller looked
                return True
            try:
                pid = os.fork()
            except OSError as exc:
                log.error("%s worker %d/%d cannot be started: %s", name, index + 1, count, exc.strerror or exc)
                return False
            if pid == 0:
                _child(index, count, serve_one, mask)
            children[pid] = index
            if stopping:  # a signal caught before the block whose Python handler ran only after the fork
                os.kill(pid, signal.SIGTERM)  # held until the child has reset its handlers
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return True

    def stop_all() -> None:
        # The service is failing: the others stop too, and the parent exits 1 once they are reaped (never
        # orphaned: they would keep the port while a supervisor starts a new service beside them).
        nonlocal stopping, status
        stopping = True
        status = 1
        forward(signal.SIGTERM, None)

    # Installed before forking so no signal is lost; each child resets them first thing.
    previous = {signum: signal.signal(signum, forward) for signum in _FORWARDED}
    try:
        for index in range(count):
            if not start(index):
                stop_all()
        while children:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            index = children.pop(pid, -1)
            code = os.waitstatus_to_exitcode(wait_status)
            if stopping:
                if code not in _CLEAN_STOP:
                    status = 1
                continue
            now = clock()
            while restarts and now - restarts[0] > window:
                restarts.popleft()
            what = f"{name} worker {index + 1}/{count} (pid {pid}) exited with status {code}"
            if len(restarts) < max_restarts:
                restarts.append(now)
                log.error(
                    "%s; starting another (%d of at most %d replacements within %g s)",
                    what,
                    len(restarts),
                    max_restarts,
                    window,
                )
                if not start(index):
                    stop_all()
                continue
            log.error("%s; more than %d replacements within %g s: stopping the others", what, max_restarts, window)
            stop_all()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status
