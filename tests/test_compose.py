"""docker-compose.yml: validated by ``docker-compose config`` (Debian's docker-compose 1.29 needs no engine)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from .cli import PROJECT_ROOT

COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(
    COMPOSE is None, reason="docker-compose is not installed (CI installs it: apt-get install -y docker-compose)"
)

PASSWORDS = {
    "POSTGRES_PASSWORD": "pg-pass",
    "CVAULT_AUTHORITY_DB_PASSWORD": "authority-pass",
    "CVAULT_STORE_DB_PASSWORD": "store-pass",
}


def _config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CVAULT_", "POSTGRES_", "COMPOSE_"))}
    return subprocess.run(
        [COMPOSE, "--project-directory", str(PROJECT_ROOT), "-f", str(PROJECT_ROOT / "docker-compose.yml"), "config"],
        env={**clean, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _parsed(text: str) -> dict[str, Any]:
    """YAML -> dict with the Python that runs docker-compose 1.29 (it depends on PyYAML; our venv does not)."""
    assert COMPOSE is not None
    with open(COMPOSE, encoding="utf-8", errors="replace") as handle:
        shebang = handle.readline()
    python = shebang[2:].strip().split()[0] if shebang.startswith("#!") else "python3"
    script = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
    out = subprocess.run([python, "-c", script], input=text, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        pytest.skip(f"cannot parse docker-compose's YAML output without PyYAML: {out.stderr.strip()[-200:]}")
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def test_compose_file_validates_with_separate_services_roles_and_health_checks() -> None:
    result = _config(PASSWORDS)
    assert result.returncode == 0, result.stderr
    config = _parsed(result.stdout)
    services = config["services"]
    assert isinstance(services, dict)
    assert set(services) == {"postgres", "authority", "store"}

    for name in services:
        assert "healthcheck" in services[name], f"{name} has no health check"
        assert list(services[name]["networks"]) == ["cvault"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/readyz" in " ".join(services["authority"]["healthcheck"]["test"])
    assert "/readyz" in " ".join(services["store"]["healthcheck"]["test"])

    # Separate database roles, each migrating only its own schema.
    authority_env = services["authority"]["environment"]
    store_env = services["store"]["environment"]
    assert authority_env["CVAULT_DATABASE_URL"].startswith("postgresql://cvault_authority:authority-pass@postgres:")
    assert store_env["CVAULT_DATABASE_URL"].startswith("postgresql://cvault_store:store-pass@postgres:")
    assert "--schema authority" in " ".join(services["authority"]["entrypoint"])
    assert "--schema store" in " ".join(services["store"]["entrypoint"])
    roles_script = (PROJECT_ROOT / "deploy/postgres/10-cvault-roles.sh").read_text()
    for statement in (
        "CREATE ROLE cvault_authority",
        "CREATE ROLE cvault_store",
        "CREATE SCHEMA authority AUTHORIZATION cvault_authority",
        "CREATE SCHEMA store AUTHORIZATION cvault_store",
    ):
        assert statement in roles_script
    mounts = " ".join(str(v) for v in services["postgres"]["volumes"])
    assert "10-cvault-roles.sh:/docker-entrypoint-initdb.d/" in mounts
    assert "pgdata:/var/lib/postgresql/data" in mounts
    assert "pgdata" in config["volumes"]

    # Master keys come from files (secrets), never from the environment.
    for name in ("authority", "store"):
        env = services[name]["environment"]
        assert "CVAULT_MASTER_KEY" not in env
        assert env["CVAULT_MASTER_KEY_FILE"] == f"/run/secrets/{name}_master_key"
        assert [s["source"] for s in services[name]["secrets"]] == [f"{name}_master_key"]
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert set(config["secrets"]) == {"authority_master_key", "store_master_key"}


def test_compose_refuses_to_run_without_passwords() -> None:
    result = _config({})
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr
