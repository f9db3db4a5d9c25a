"""Run the README's shell blocks line by line, as a reader pastes them into a terminal.

Each line runs in its own ``bash`` (``set -eo pipefail``: a line of several commands
fails if any does) with the environment the previous lines left behind (``export``
and ``eval`` carry over, as in one shell). A line that prompts (a password, a
secret's value) gets a terminal on stdin, a pseudo-terminal in a new session, and
what :class:`Shell` types there once the prompt shows; other lines get an empty
stdin (a pseudo-terminal would hang up a background job, ``cvault dev &``, when
its line's shell exits). The only edits a line gets are the reader's own: the
placeholders it names (``ID``, ``CODE``) and this machine's addresses and paths in
place of the README's examples (:attr:`Shell.replace`).
"""

from __future__ import annotations

import os
import re
import select
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .cvault_command import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
LINE_BOUND = 120.0


def readme_blocks(section: str, language: str = "sh") -> list[list[str]]:
    """The ``language`` code blocks of the README's ``## section``, each as its lines."""
    text = README.read_text()
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else len(text)]
    return [block.strip("\n").splitlines() for block in re.findall(rf"```{language}\n(.*?)```", body, re.S)]


def cvault_on_path(bin_dir: Path) -> Path:
    """A ``cvault`` executable running this checkout, as ``pip install -e .`` would put on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "cvault"
    script.write_text(
        f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(PROJECT_ROOT))} exec {shlex.quote(sys.executable)} -m vault.cli "$@"\n'
    )
    script.chmod(0o755)
    return bin_dir


@dataclass
class Ran:
    line: str
    status: int
    out: str
    err: str


@dataclass
class Shell:
    """One reader's terminal: a working directory, an environment, and what they type at prompts."""

    cwd: Path
    env: dict[str, str]
    replace: dict[str, str] = field(default_factory=dict)
    ran: list[Ran] = field(default_factory=list)

    def run(self, line: str, typed: str = "", bound: float = LINE_BOUND) -> Ran:
        for example, here in self.replace.items():
            line = line.replace(example, here)
        env_file = self.cwd / ".readme-env"
        script = f"set -eo pipefail\ntrap 'env -0 > {shlex.quote(str(env_file))}' EXIT\n{line}\n"
        primary, secondary = os.openpty() if typed else (-1, subprocess.DEVNULL)
        try:
            process = subprocess.Popen(
                ["bash", "-c", script],
                cwd=self.cwd,
                env=self.env,
                stdin=secondary,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # no controlling terminal: a prompt reads the pty on its stdin
            )
            # Typed once the prompt shows: getpass flushes what was typed before it asks.
            head = _until_prompt(process, primary, bound) if typed else b""
            if typed:
                os.write(primary, typed.encode())
            try:
                out, err = process.communicate(timeout=bound)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
                raise AssertionError(
                    f"{line!r} did not finish in {bound:g} s: {(head + err).decode()[-2000:]}"
                ) from None
        finally:
            if typed:
                os.close(secondary)
                os.close(primary)
        done = subprocess.CompletedProcess(script, process.returncode, out.decode(), (head + err).decode())
        if env_file.exists():
            pairs = (item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
            self.env = {k: v for k, v in pairs if not k.startswith("BASH_FUNC_") and k not in ("_", "SHLVL", "PWD")}
            env_file.unlink()
        ran = Ran(line, done.returncode, done.stdout, done.stderr)
        self.ran.append(ran)
        return ran

    def must(self, line: str, typed: str = "") -> Ran:
        ran = self.run(line, typed)
        assert ran.status == 0, ran
        return ran


def _until_prompt(process: subprocess.Popen[bytes], terminal: int, bound: float) -> bytes:
    """Wait for the prompt (text ending in ": ") on the terminal or stderr; what came on stderr meanwhile.

    ``getpass`` writes its prompt to the terminal when it can open it, else to stderr.
    """
    assert process.stderr is not None
    err, seen, deadline = process.stderr.fileno(), {}, time.monotonic() + bound
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([err, terminal], [], [], 0.1)
        for fd in ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the terminal hung up
                chunk = b""
            seen[fd] = seen.get(fd, b"") + chunk
        if any(text.endswith(b": ") for text in seen.values()):
            break
    return seen.get(err, b"")


def fresh_env(home: Path, bin_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A new login's environment: PATH (with ``cvault``), HOME, and nothing of cvault's but ``extra``."""
    home.mkdir(parents=True, exist_ok=True)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", **(extra or {})}
