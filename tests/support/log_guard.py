"""Every log line the suite produces is checked for credentials (issue 14: never a token, session or password).

A session-wide handler on the root logger (at INFO, so the access log is included)
formats every record in both log formats and keeps the lines that carry a token
(``cv1_``), a session (``cvs_``) or the harness's password. The session fails at
its end if any was kept. Lines of ``cvault`` subprocesses are checked by the tests
that start them (tests/operations/test_logs.py, tests/operations/test_tls.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from vault.logs import JSONFormatter, TextFormatter

from .harness import PASSWORD

FORBIDDEN = ("cv1_", "cvs_", PASSWORD)


def leaks(line: str) -> bool:
    return any(marker in line for marker in FORBIDDEN)


class _Guard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.formats = (TextFormatter(), JSONFormatter())
        self.lines = 0
        self.leaked: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += 1
        for fmt in self.formats:
            try:
                line = fmt.format(record)
            except Exception as exc:  # a record that cannot be formatted is a bug too
                line = f"unformattable record from {record.name}: {type(exc).__name__}"
                self.leaked.append(line)
                return
            if leaks(line):
                self.leaked.append(line[:300])
                return


@pytest.fixture(scope="session", autouse=True)
def log_guard() -> Iterator[_Guard]:
    guard = _Guard()
    root = logging.getLogger()
    level = root.level
    root.addHandler(guard)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield guard
    finally:
        root.removeHandler(guard)
        root.setLevel(level)
    assert not guard.leaked, f"{len(guard.leaked)} log line(s) carry a credential, e.g. {guard.leaked[:3]}"
