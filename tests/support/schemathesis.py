"""Schemathesis, the real CLI, over a service's served OpenAPI document (tests/*/test_openapi_contract.py).

``run_schemathesis`` runs ``st run --checks all`` (phases examples, coverage and fuzzing, derandomized: the same cases
every run) against a live service with a ``schemathesis.toml`` that :func:`schemathesis_config` writes: headers,
parameters pinned on every operation that has them, per-operation settings and dictionaries parameters draw from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["run_schemathesis", "schemathesis_config"]

MAX_EXAMPLES = 10
ST = Path(sys.executable).parent / "st"


def _toml(value: Any) -> str:
    """A TOML value: JSON's spelling is TOML's for strings, integers, arrays and (inline) tables of them."""
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def schemathesis_config(
    headers: Mapping[str, str],
    *,
    parameters: Mapping[str, Any] | None = None,
    operations: Mapping[str, Mapping[str, Any]] | None = None,
    dictionaries: Mapping[str, list[Any]] | None = None,
) -> str:
    """A schemathesis.toml: ``headers`` on every request, ``parameters`` fixed on every operation that has them
    (``"path.org"``), ``operations`` (label ``"GET /path"`` -> settings: headers, parameters, checks) and
    ``dictionaries`` (name -> values) that parameters draw from."""
    lines = [f"headers = {_toml(headers)}"]
    if parameters:
        lines.append(f"parameters = {_toml(parameters)}")
    lines.append("")
    for name, values in (dictionaries or {}).items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml(values)}", ""]
    for label, settings in (operations or {}).items():
        lines += ["[[operations]]", f"include-name = {json.dumps(label)}"]
        lines += [f"{key} = {_toml(value)}" for key, value in settings.items()]
        lines.append("")
    return "\n".join(lines)


def run_schemathesis(tmp: Path, spec: dict[str, Any], base_url: str, config: str) -> tuple[int, str]:
    """``st run`` over ``spec`` with ``config`` (a schemathesis.toml): its exit status and its report (failures
    named by operation and check)."""
    (tmp / "openapi.json").write_text(json.dumps(spec))
    (tmp / "schemathesis.toml").write_text(config)
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
