"""Output helpers shared by the commands: JSON, tables, durations, files readable by their owner only."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from vault.errors import ConfigError


def print_json(value: Any, out: TextIO | None = None) -> None:
    out = sys.stdout if out is None else out
    json.dump(value, out, indent=2, sort_keys=True)
    out.write("\n")


def duration(seconds: int) -> str:
    """``75`` -> ``1 minute 15 seconds``; coarse for long spans."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        m = f"{minutes} minute{'s' if minutes != 1 else ''}"
        return f"{m} {secs} seconds" if secs and minutes < 10 else m
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''} {minutes} minutes"
    return f"{hours // 24} days"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def open_private(path: Path) -> TextIO:
    """``path`` opened for writing, readable by its owner only (mode 0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


def replace_private(path: Path, data: bytes, *, what: str = "", durable: bool = False) -> None:
    """Replace ``path`` with ``data``, readable by its owner only, so that a reader sees the old file or the new one.

    ``data`` goes to a fresh temporary file beside ``path`` (mode 0600; a stale file or a planted symlink
    at that name, in a shared directory, is removed first and never written through), renamed over it.
    ``durable`` also fsyncs the file and the directory. A failure is a :class:`ConfigError` naming
    ``what`` (e.g. "the sink file") and the path.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        if durable:
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ConfigError(f"cannot write {what + ' ' if what else ''}{path}: {exc.strerror}") from None


def add_output_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help=f"write {what} to FILE, readable by you only (mode 0600)"
    )
