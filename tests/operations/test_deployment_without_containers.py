"""The deployment of docs/operations.md without containers: two ``cvault serve`` processes, each with its own
database role, TLS from ``deploy/init``'s CA, the revocation feed token ``deploy/init`` made.

The roles are those of ``deploy/postgres/10-cvault-roles.sh`` (``tests/support/database_roles.py``); each service's
role migrates its own schema; the store learns the authority's org public key with ``deploy/pin-authority-key.py``;
then the journey every deployment test runs (``tests/support/deployment_journey.py``), and a restart of both services
that keeps the data.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiohttp.test_utils import unused_port

from tests.support.cvault_command import PROJECT_ROOT, cvault_command, cvault_env
from tests.support.database_roles import Roles, roles
from tests.support.deployment_journey import SECRET, journey

__all__ = ["roles"]

READY_WITHIN = 60.0  # seconds; bounds a broken start only


def _run(args: list[str], env: dict[str, str], *, input: str | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(args, env=env, input=input, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{args[3:6]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextmanager
def serving(service: str, env: dict[str, str], url: str, ca: Path, log: Path) -> Iterator[None]:
    """``cvault serve SERVICE`` until the block ends, once its ``/readyz`` answers over TLS."""
    with log.open("a") as out:
        process = subprocess.Popen(cvault_command("serve", service), env=env, stdout=out, stderr=out)
    try:
        context = ssl.create_default_context(cafile=str(ca))
        deadline = time.monotonic() + READY_WITHIN
        while True:
            assert process.poll() is None, f"cvault serve {service} exited:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2, context=context) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{service} not ready:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_two_services_with_their_own_roles_and_deploy_init_tls(roles: Roles, tmp_path: Path) -> None:
    deploy = tmp_path / "deploy"
    made = shutil.ignore_patterns("tls", "*.key", "*.token", "*.sha256")  # what deploy/init makes
    shutil.copytree(PROJECT_ROOT / "deploy", deploy, ignore=made)
    _run([str(deploy / "init")], cvault_env())
    tls, ca = deploy / "tls", deploy / "tls/ca.pem"
    authority_port, store_port = unused_port(), unused_port()
    authority_url, store_url = f"https://127.0.0.1:{authority_port}", f"https://127.0.0.1:{store_port}"
    common = {"CVAULT_AUTHORITY_URL": authority_url, "CVAULT_STORE_URL": store_url, "CVAULT_LOG_FORMAT": "json"}
    ports = {"authority": authority_port, "store": store_port}

    def service(name: str, database_url: str, **extra: str) -> dict[str, str]:
        """The settings of one service: its role, its master key, its port and certificate from deploy/init."""
        env = cvault_env(
            {
                **common,
                "CVAULT_DATABASE_URL": database_url,
                "CVAULT_MASTER_KEY_FILE": str(deploy / f"{name}.master.key"),
                f"CVAULT_{name.upper()}_LISTEN": f"127.0.0.1:{ports[name]}",
                "CVAULT_TLS_CERT_FILE": str(tls / f"{name}.pem"),
                "CVAULT_TLS_KEY_FILE": str(tls / f"{name}-key.pem"),
                **extra,
            }
        )
        env.pop("CVAULT_TEST_DATABASE_URL", None)
        return env

    authority = service(
        "authority",
        roles.authority_url,
        CVAULT_REVOCATION_FEED_TOKEN_SHA256=(deploy / "revocation-feed.sha256").read_text().strip(),
    )
    store = service(
        "store",
        roles.store_url,
        CVAULT_REVOCATION_FEED_TOKEN=(deploy / "revocation-feed.token").read_text().strip(),
        CVAULT_REVOCATION_FEED_URL=f"{authority_url}/v1/revocations/feed",
        CVAULT_REVOCATION_FEED_CA_FILE=str(ca),
        CVAULT_AUTHORITY_KEYS_URL=f"{authority_url}/.well-known/cvault/keys",
    )
    _run(cvault_command("migrate", "--schema", "authority"), authority)
    _run(cvault_command("migrate", "--schema", "store"), store)
    client = cvault_env({**common, "CVAULT_CACERT": str(ca), "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})
    client.pop("CVAULT_TEST_DATABASE_URL", None)

    def cvault(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
        return _run(cvault_command(*args), env or client, input=input, cwd=tmp_path)

    log = tmp_path / "services.log"
    with serving("authority", authority, authority_url, ca, log):
        out = cvault("bootstrap", "--email", "owner@example.com", "--org", "acme", "--password-stdin",
                     input="a long enough owner password\n", env=authority)  # fmt: skip
        session = next(line.split()[1] for line in out.splitlines() if line.startswith("session:"))
        pin = {**cvault_env(), "AUTHORITY_KEYS_URL": f"{authority_url}/.well-known/cvault/keys",
               "PIN_FILE": str(tmp_path / "authority-org-key"), "CVAULT_CACERT": str(ca)}  # fmt: skip
        pinned = _run([sys.executable, str(deploy / "pin-authority-key.py")], pin)
        store["CVAULT_AUTHORITY_ORG_PUBLIC_KEY"] = pinned.strip()
        with serving("store", store, store_url, ca, log):
            done = journey(cvault, client, tmp_path, session, store_url)
    # Both restarted: the data is kept.
    with serving("authority", authority, authority_url, ca, log), serving("store", store, store_url, ca, log):
        assert cvault("secrets", "get", "db/url", "--vault", "prod", env=done.operator).strip() == SECRET
        out = cvault("run", "--vault", "prod", "--", "sh", "-c", 'echo "DB_URL=$DB_URL"', env=done.workload)
        assert out.strip() == f"DB_URL={SECRET}"
