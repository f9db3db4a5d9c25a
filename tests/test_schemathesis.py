"""Schemathesis, the real CLI with every check, over both generated OpenAPI documents (issue 28 item 1).

Each service serves its document at ``/openapi.json``, generated from the models its handlers decode and encode
(:mod:`vault.web.contract`). ``st run --checks all`` runs the examples, coverage and fuzzing phases against the
live services with the world's credentials, derandomized: the same cases every run. The acceptance is no contract
mismatch at all: no 5xx, every status, content type and body as documented, data the document forbids refused
with a 4xx and data it allows accepted, undeclared methods answered 405 with ``Allow``, a missing or ignored
credential refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .store_fixtures import World, services, world

__all__ = ["services", "world"]

MAX_EXAMPLES = 10
ST = Path(sys.executable).parent / "st"


def _toml_table(headers: Mapping[str, Any]) -> str:
    return "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in headers.items()) + " }"


def _config(
    default: Mapping[str, str], by_operation: Mapping[str, Mapping[str, str]], parameters: Mapping[str, Any]
) -> str:
    """A schemathesis.toml: ``default`` headers on every request, other headers for some operations (by label,
    ``"GET /path"``), ``parameters`` fixed on every operation that has them (``"path.org"``)."""
    lines = [f"headers = {_toml_table(default)}"]
    if parameters:
        lines.append(f"parameters = {_toml_table(parameters)}")
    lines.append("")
    for label, headers in by_operation.items():
        lines += ["[[operations]]", f"include-name = {json.dumps(label)}"]
        lines += [f"headers = {_toml_table(headers)}", ""]
    return "\n".join(lines)


def run_schemathesis(
    tmp: Path,
    spec: dict[str, Any],
    base_url: str,
    default: Mapping[str, str],
    by_operation: Mapping[str, Any],
    parameters: Mapping[str, Any] | None = None,
) -> tuple[int, str]:
    """``st run`` over ``spec``: its exit status and its report (failures named by operation and check)."""
    (tmp / "openapi.json").write_text(json.dumps(spec))
    (tmp / "schemathesis.toml").write_text(_config(default, by_operation, parameters or {}))
    command = [
        str(ST),
        "--config-file",
        str(tmp / "schemathesis.toml"),
        "run",
        str(tmp / "openapi.json"),
        "--url",
        base_url,
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--seed",
        "1",
        "--workers",
        "1",
        "--continue-on-failure",
        "--output-sanitize",
        "true",
        "--no-color",
        "--request-timeout",
        "30",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp, timeout=900)
    return done.returncode, done.stdout + done.stderr


async def test_the_store_document_holds_against_the_store(world: World, tmp_path: Path) -> None:
    h = world.h
    spec = (await h.store("GET", "/openapi.json")).body
    headers = {"Authorization": f"Bearer {world.bundle}"}
    # The world's org and vault on every operation that names them: a random org stops every case at 404, before
    # the operation's own rules are exercised. Names, bodies and queries stay generated.
    pinned = {"path.org": world.org, "path.vault": "prod"}
    status, report = await asyncio.to_thread(run_schemathesis, tmp_path, spec, h.store_url, headers, {}, pinned)
    assert status == 0, report


async def test_the_authority_document_holds_against_the_authority(world: World, tmp_path: Path) -> None:
    h = world.h
    spec = (await h.authority("GET", "/openapi.json")).body
    # Logging out gets a session of its own, so the other operations keep a live one.
    spare = await h.login(world.owner.email, world.owner.id)
    by_operation: dict[str, dict[str, str]] = {}
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            label = f"{method.upper()} {path}"
            schemes = {name for requirement in operation.get("security") or [] for name in requirement}
            if "feed" in schemes:
                by_operation[label] = {"Authorization": f"Bearer {h.feed_token}"}
            elif "bundle" in schemes and "session" not in schemes:
                by_operation[label] = {"Authorization": f"Bearer {world.auth}"}
    by_operation["DELETE /v1/sessions/current"] = {"Authorization": f"Bearer {spare.session}"}
    default = {"Authorization": f"Bearer {world.owner.session}"}
    status, report = await asyncio.to_thread(run_schemathesis, tmp_path, spec, h.authority_url, default, by_operation)
    assert status == 0, report
