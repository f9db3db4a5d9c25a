"""Run the real ``cvault`` command in a subprocess, with this checkout's code on the path."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cvault_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment minus server settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_") or k == "CVAULT_TEST_DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra or {})
    return env


def cvault_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "vault.cli", *args]


async def run_cvault(*args: str, env: Mapping[str, str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one ``cvault`` run."""
    process = await asyncio.create_subprocess_exec(
        *cvault_command(*args),
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()
