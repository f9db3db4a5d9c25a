"""docker-compose.yml, checked statically as far as it can be without a Docker engine (issue 14).

``docker-compose config`` (Debian's docker-compose 1.29 needs no engine) validates and
resolves the file; the checks then map every path a container sees back to the file
on this machine and load the services' configuration from the resolved environment
with cvault's own code: every variable known and valid, key files readable, TLS
certificate and key matching, the published URLs https. ``deploy/init`` runs for real,
and ``deploy/docker-entrypoint.sh`` runs for real as root here (with a stand-in ``cvault``)
to show the secrets become readable by the image's user, uid 10001, and by no one else.
What needs the engine (building the image, starting the containers) is not run here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from tests.support.cvault_command import PROJECT_ROOT
from vault.config import load_config
from vault.crypto.local_ca import LocalCA
from vault.web.authority import create_authority_app
from vault.web.runner import _open_tls, serve_app
from vault.web.tls import TLSFiles, load_context

COMPOSE = shutil.which("docker-compose")
IMAGE_UID = 10001

PASSWORDS = {
    "POSTGRES_PASSWORD": "pg-pass",
    "CVAULT_AUTHORITY_DB_PASSWORD": "authority-pass",
    "CVAULT_STORE_DB_PASSWORD": "store-pass",
}


def _compose() -> str:
    if COMPOSE is None:
        pytest.fail("docker-compose is not installed: apt-get install docker-compose (scripts/install-test-deps)")
    return COMPOSE


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    """A copy of the compose project with ``deploy/init`` run in it (keys, CA, certificates)."""
    root = Path(tempfile.mkdtemp(prefix="cvault-compose-"))
    try:
        shutil.copy(PROJECT_ROOT / "docker-compose.yml", root)
        shutil.copy(PROJECT_ROOT / "Dockerfile", root)
        shutil.copytree(PROJECT_ROOT / "deploy", root / "deploy", ignore=shutil.ignore_patterns("*.master.key", "tls"))
        result = subprocess.run(
            [str(root / "deploy" / "init")], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stderr
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _config(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CVAULT_", "POSTGRES_", "COMPOSE_"))}
    return subprocess.run(
        [_compose(), "--project-directory", str(root), "-f", str(root / "docker-compose.yml"), "config"],
        env={**clean, **env},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _parsed(text: str) -> dict[str, Any]:
    """YAML -> dict with the Python that runs docker-compose 1.29 (it depends on PyYAML; our venv does not)."""
    with open(_compose(), encoding="utf-8", errors="replace") as handle:
        shebang = handle.readline()
    python = shebang[2:].strip().split()[0] if shebang.startswith("#!") else "python3"
    script = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
    out = subprocess.run([python, "-c", script], input=text, capture_output=True, text=True, check=False)
    assert out.returncode == 0, f"cannot parse docker-compose's YAML output: {out.stderr.strip()[-200:]}"
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@pytest.fixture(scope="module")
def compose(project: Path) -> dict[str, Any]:
    result = _config(project, PASSWORDS)
    assert result.returncode == 0, result.stderr
    return _parsed(result.stdout)


def _host_paths(config: dict[str, Any], name: str) -> dict[str, Path]:
    """Container path -> file on this machine, for the service's secrets and bind mounts."""
    service = config["services"][name]
    paths: dict[str, Path] = {}
    for secret in service.get("secrets", []):
        source = secret["source"]
        paths[f"/run/secrets/{secret.get('target', source)}"] = Path(config["secrets"][source]["file"])
    for volume in service.get("volumes", []):
        text = volume if isinstance(volume, str) else f"{volume['source']}:{volume['target']}"
        host, _, rest = text.partition(":")
        if host.startswith("/"):
            paths[rest.split(":")[0]] = Path(host)
    return paths


def _service_env(config: dict[str, Any], name: str) -> dict[str, str]:
    """The service's CVAULT_* environment with container paths replaced by the files they are."""
    paths = _host_paths(config, name)
    env = {}
    for key, value in config["services"][name]["environment"].items():
        value = str(value)
        env[key] = str(paths[value]) if value in paths else value
    return env


def test_compose_file_validates_with_separate_services_roles_and_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "authority", "store"}
    for name in services:
        assert "healthcheck" in services[name], f"{name} has no health check"
        assert list(services[name]["networks"]) == ["cvault"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name, port in (("authority", 8201), ("store", 8202)):
        check = " ".join(services[name]["healthcheck"]["test"])
        # Over TLS, verified with the CA mounted into the container.
        assert f"https://127.0.0.1:{port}/readyz" in check
        assert "cafile='/etc/cvault/tls/ca.pem'" in check
        assert "/etc/cvault/tls/ca.pem" in _host_paths(compose, name)
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["store"]["depends_on"]["authority"]["condition"] == "service_healthy"

    # Separate database roles, each migrating only its own schema.
    assert _service_env(compose, "authority")["CVAULT_DATABASE_URL"].startswith(
        "postgresql://cvault_authority:authority-pass@postgres:"
    )
    assert _service_env(compose, "store")["CVAULT_DATABASE_URL"].startswith(
        "postgresql://cvault_store:store-pass@postgres:"
    )
    entrypoint = (PROJECT_ROOT / "deploy/docker-entrypoint.sh").read_text()
    assert 'cvault migrate --schema "$0"' in entrypoint and "cvault migrate --schema store" in entrypoint
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


@pytest.mark.parametrize("name", ["authority", "store"])
def test_every_setting_a_service_needs_is_set_valid_and_its_files_usable(compose: dict[str, Any], name: str) -> None:
    env = _service_env(compose, name)
    # Master key and TLS key from files (secrets), never inline.
    assert "CVAULT_MASTER_KEY" not in env
    assert compose["services"][name]["environment"]["CVAULT_MASTER_KEY_FILE"] == f"/run/secrets/{name}_master_key"
    assert compose["services"][name]["environment"]["CVAULT_TLS_KEY_FILE"] == f"/run/secrets/{name}_tls_key"
    if name == "store":
        # Not set by hand: the entrypoint pins it from the authority (see the pin test below).
        assert "CVAULT_AUTHORITY_ORG_PUBLIC_KEY" not in env
        assert env["AUTHORITY_KEYS_URL"] == "https://authority:8201/.well-known/cvault/keys"
        assert env["PIN_FILE"].startswith("/var/lib/cvault/")
        assert any(str(v).startswith("storestate:/var/lib/cvault") for v in compose["services"]["store"]["volumes"])
        env["CVAULT_AUTHORITY_ORG_PUBLIC_KEY"] = base64.b64encode(bytes(32)).decode()
    server_env = {k: v for k, v in env.items() if k.startswith("CVAULT_")}
    # cvault's own loader: unknown variables and bad values raise, the master key file is read.
    config = load_config(server_env)
    assert config.master_key is not None and len(config.master_key) == 32
    files = TLSFiles.from_config(config)
    assert files is not None
    load_context(files)  # readable, and the key is the certificate's
    listen = config.authority_listen if name == "authority" else config.store_listen
    url = config.authority_url if name == "authority" else config.store_url
    assert listen.startswith("0.0.0.0:") and url.startswith("https://")
    assert _open_tls(config, listen, url) is not None  # the runner's own check: TLS, URL scheme matching
    assert config.metrics_listen is not None and config.log_format == "json"
    # Port published = port listened on; the metrics port is not published.
    assert compose["services"][name]["ports"][0]["target"] == int(listen.rpartition(":")[2])
    assert all(p["target"] != int(config.metrics_listen.rpartition(":")[2]) for p in compose["services"][name]["ports"])


def test_deploy_init_makes_private_keys_and_certificates_for_the_service_names(project: Path) -> None:
    deploy = project / "deploy"
    for key in ("authority.master.key", "store.master.key", "tls/ca-key.pem", "tls/authority-key.pem"):
        mode = stat.S_IMODE((deploy / key).stat().st_mode)
        assert mode == 0o600, f"{key} is {oct(mode)}"
        assert len(base64.b64decode((deploy / key).read_text())) == 32 if key.endswith(".master.key") else True
    ca = x509.load_pem_x509_certificate((deploy / "tls/ca.pem").read_bytes())
    for name in ("authority", "store"):
        cert = x509.load_pem_x509_certificate((deploy / f"tls/{name}.pem").read_bytes())
        for subject in (
            x509.DNSName(name),
            x509.DNSName("localhost"),
            x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
        ):
            PolicyBuilder().store(Store([ca])).build_server_verifier(subject).verify(cert, [])
    # A second run keeps everything.
    before = (deploy / "store.master.key").read_bytes()
    assert subprocess.run([str(deploy / "init")], capture_output=True, timeout=60, check=False).returncode == 0
    assert (deploy / "store.master.key").read_bytes() == before


def test_image_user_is_the_one_the_entrypoint_gives_the_secrets_to() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert f"--uid {IMAGE_UID}" in dockerfile and f"--gid {IMAGE_UID}" in dockerfile
    assert "deploy/docker-entrypoint.sh" in dockerfile and "pin-authority-key.py" in dockerfile
    entrypoint = (PROJECT_ROOT / "deploy/docker-entrypoint.sh").read_text()
    assert f'uid="${{CVAULT_UID:-{IMAGE_UID}}}"' in entrypoint
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert "deploy/*.master.key" in ignored and "deploy/tls/" in ignored


def _world_traversable_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="cvault-entrypoint-", dir="/tmp"))
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("name", ["authority", "store"])
def test_entrypoint_makes_the_secrets_readable_by_uid_10001_only(
    compose: dict[str, Any], project: Path, name: str
) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test runs the entrypoint as root, as the container does (CI runs as root)")
    work = _world_traversable_dir()
    try:
        # /run/secrets as the engine would mount it: the host files, owned by the host user, mode 0600.
        secrets = work / "secrets"
        secrets.mkdir()
        for container_path, host in _host_paths(compose, name).items():
            if container_path.startswith("/run/secrets/"):
                shutil.copy(host, secrets / container_path.rsplit("/", 1)[1])
                (secrets / container_path.rsplit("/", 1)[1]).chmod(0o600)
        # A stand-in cvault: reports who runs it and whether it can read its key files.
        bin_dir = work / "bin"
        bin_dir.mkdir()
        report = work / "report"
        report.touch()
        report.chmod(0o666)
        fake = bin_dir / "cvault"
        fake.write_text(
            "#!/bin/sh\n"
            f'echo "$(id -u):$(id -g) $* key=$(head -c 4 "$CVAULT_MASTER_KEY_FILE" | wc -c)'
            f' tls=$(head -c 4 "$CVAULT_TLS_KEY_FILE" | wc -c)" >> {report}\n'
        )
        fake.chmod(0o755)
        private = work / "private"
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "CVAULT_SECRETS_DIR": str(secrets),
            "CVAULT_PRIVATE_DIR": str(private),
            "CVAULT_TLS_KEY_FILE": f"/run/secrets/{name}_tls_key",
            "CVAULT_AUTHORITY_ORG_PUBLIC_KEY": "pinned-elsewhere",
        }
        result = subprocess.run(
            [str(PROJECT_ROOT / "deploy/docker-entrypoint.sh"), name],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        lines = report.read_text().splitlines()
        assert lines == [
            f"{IMAGE_UID}:{IMAGE_UID} migrate --schema {name} key=4 tls=4",
            f"{IMAGE_UID}:{IMAGE_UID} serve {name} key=4 tls=4",
        ]
        for copied in private.iterdir():
            info = copied.stat()
            assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (IMAGE_UID, IMAGE_UID, 0o400)
        assert stat.S_IMODE(private.stat().st_mode) == 0o700 and private.stat().st_uid == IMAGE_UID

        # A missing secret is named, and nothing starts.
        (secrets / f"{name}_master_key").unlink()
        report.write_text("")
        failed = subprocess.run(
            [str(PROJECT_ROOT / "deploy/docker-entrypoint.sh"), name],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert failed.returncode == 1 and f"{name}_master_key is missing" in failed.stderr
        assert report.read_text() == ""
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def test_store_pins_the_authority_key_at_first_start(database_url: str, tmp_path: Path) -> None:
    ca = LocalCA.create("compose test CA")
    ca.save(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    issued = ca.issue(tmp_path, "authority", ["127.0.0.1"])
    port = unused_port()
    config = load_config(
        {},
        database_url=database_url,
        master_key=base64.b64encode(os.urandom(32)).decode(),
        database_pool_size=2,
        tls_cert_file=str(issued.cert_file),
        tls_key_file=str(issued.key_file),
    )
    config = replace(config, authority_url=f"https://127.0.0.1:{port}")
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_app(create_authority_app(config), f"127.0.0.1:{port}", stop, config, url=config.authority_url)
    )
    pin = tmp_path / "state" / "authority-org-key"
    script = [sys.executable, str(PROJECT_ROOT / "deploy/pin-authority-key.py")]
    env = {
        "PATH": os.environ["PATH"],
        "AUTHORITY_KEYS_URL": f"https://127.0.0.1:{port}/.well-known/cvault/keys",
        "PIN_FILE": str(pin),
        "CVAULT_CACERT": str(tmp_path / "ca.pem"),
    }

    def run(extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            script, env={**env, **(extra or {})}, capture_output=True, text=True, timeout=90, check=False
        )

    try:
        first = await asyncio.to_thread(run)
        assert first.returncode == 0, first.stderr
        import ssl

        import aiohttp

        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        async with aiohttp.ClientSession() as http, http.get(env["AUTHORITY_KEYS_URL"], ssl=context) as resp:
            served = (await resp.json())["org"]["public_key"]
        assert first.stdout.strip() == served
        assert stat.S_IMODE(pin.stat().st_mode) == 0o600 and pin.read_text().strip() == served
        # Later starts use the pin; a different key served is reported, not adopted.
        other = base64.b64encode(os.urandom(32)).decode()
        pin.write_text(other + "\n")
        again = await asyncio.to_thread(run)
        assert again.returncode == 0 and again.stdout.strip() == other
        assert "now serves another org key" in again.stderr
        # No pin yet and a CA that did not sign the authority's certificate: refused.
        pin.unlink()
        wrong = LocalCA.create("wrong CA")
        wrong.save(tmp_path / "wrong.pem", tmp_path / "wrong-key.pem")
        refused = await asyncio.to_thread(run, {"CVAULT_CACERT": str(tmp_path / "wrong.pem")})
        assert refused.returncode != 0 and "TLS failed" in refused.stderr and not pin.exists()
    finally:
        stop.set()
        await task


def test_compose_refuses_to_run_without_passwords(project: Path) -> None:
    result = _config(project, {})
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_entrypoint_is_posix_sh() -> None:
    for script in ("deploy/docker-entrypoint.sh", "deploy/init"):
        assert subprocess.run(["sh", "-n", str(PROJECT_ROOT / script)], check=False).returncode == 0
        assert os.access(PROJECT_ROOT / script, os.X_OK)
    assert re.search(r"setpriv --reuid=\"\$uid\"", (PROJECT_ROOT / "deploy/docker-entrypoint.sh").read_text())


@pytest.mark.parametrize("name", ["authority", "store"])
def test_systemd_units_hand_the_keys_over_as_credentials_and_migrate_first(name: str) -> None:
    unit = (PROJECT_ROOT / f"deploy/systemd/cvault-{name}.service").read_text()
    lines = [line.strip() for line in unit.splitlines() if line.strip() and not line.startswith("#")]
    assert "User=cvault" in lines and "NoNewPrivileges=true" in lines
    assert f"LoadCredential=master.key:/etc/cvault/credentials/{name}.master.key" in lines
    assert f"ExecStartPre=/opt/cvault/bin/cvault migrate --schema {name}" in lines
    assert f"ExecStart=/opt/cvault/bin/cvault serve {name}" in lines
    assert "ExecReload=/bin/kill -HUP $MAINPID" in lines
    # Every variable the unit sets is a setting cvault knows (the credentials directory stands in for %d).
    env = dict(line.removeprefix("Environment=").split("=", 1) for line in lines if line.startswith("Environment="))
    with tempfile.TemporaryDirectory() as credentials:
        Path(credentials, "master.key").write_text(base64.b64encode(os.urandom(32)).decode())
        config = load_config({k: v.replace("%d", credentials) for k, v in env.items()})
    assert config.master_key is not None and config.tls_key_file == Path(credentials, "tls-key.pem")
