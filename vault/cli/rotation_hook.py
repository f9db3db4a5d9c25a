"""The generic rotation target (docs/rotation.md, "The command hook"): an operator's executable per step.

A policy names a hook (``cvault rotation set NAME --command HOOK``); the rotator maps the name to an executable
given when it starts (``cvault serve rotator --hook HOOK=/path``), so a policy set through the store's API never
chooses what runs on the rotator's host. The executable gets the step (``set`` or ``test``) as its one argument
and a JSON object on stdin: ``{"step", "vault", "secret", "pending_version", "value"}``. Exit status 0 means done;
anything else is a failure, whose reason is the first line of its standard error (at most 300 characters).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from pathlib import Path

from vault.storage.rotation_target import TargetFailed

__all__ = ["CommandHooks"]

_REASON = 300


class CommandHooks:
    def __init__(self, hooks: Mapping[str, Path], *, timeout: float) -> None:
        # Absolute paths only: a bare name would be looked up in PATH, and a relative one against whatever the
        # working directory is when a rotation runs, rather than naming one executable when the rotator starts.
        relative = sorted(name for name, path in hooks.items() if not path.is_absolute())
        if relative:
            raise ValueError(f"hook {relative[0]!r}: give the executable's absolute path")
        self._hooks = dict(hooks)
        self._timeout = timeout

    async def run(self, hook: str, step: str, *, vault: str, secret: str, pending_version: int, value: str) -> None:
        path = self._hooks.get(hook)
        if path is None:
            raise TargetFailed(f"this rotator has no hook {hook!r} (start it with --hook {hook}=/path/to/executable)")
        body = {"step": step, "vault": vault, "secret": secret, "pending_version": pending_version, "value": value}
        # The value travels on stdin only; the environment is the rotator's minus its own credentials.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")}
        try:
            process = await asyncio.create_subprocess_exec(
                str(path),
                step,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise TargetFailed(f"cannot run hook {hook!r} ({path}): {exc.strerror}") from None
        try:
            _out, err = await asyncio.wait_for(process.communicate(json.dumps(body).encode()), self._timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise TargetFailed(f"hook {hook!r} did not finish {step!r} within {self._timeout:g} s") from None
        if process.returncode != 0:
            first = err.decode("utf-8", "replace").strip().splitlines()[:1]
            said = first[0].replace(value, "***")[:_REASON] if first else "no message"
            raise TargetFailed(f"hook {hook!r} failed {step!r} with status {process.returncode}: {said}")
