"""docker-compose.yml as shipped, brought up on a real Docker engine and used end to end from this host.

The journey of docs/operations.md ("docker-compose"), step by step: the local base images (Docker Hub cannot be
reached here: ``deploy/base-images/build`` makes them from Debian's packages, cached by a hash of the recipe),
``deploy/init``, ``docker-compose up -d`` with the shipped file (the only difference is ``.env`` naming the local
base images, which the file reads for exactly that), healthy services, ``bootstrap``, ``store enroll``, a secret
written, workload tokens written to 0600 files, ``cvault run`` from the host over TLS, a revocation at the
authority seen by the store through the feed, ``/metrics`` scraped, the JSON logs parsed, ``docker-compose
restart`` keeping the data, ``down -v``.

The engine is Debian's ``docker.io`` (``.ci/run`` starts ``dockerd`` when none runs); a missing engine fails the
test. On the shared 2-core build machine: 8.5 minutes with no image built, 1 to 2 minutes with the images cached
(docs/operations.md has the figures and the image sizes).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cvault_command import PROJECT_ROOT, cvault_command, cvault_env
from tests.support.deployment_journey import SECRET, assert_private, journey
from vault.client import Client

# What the image needs from the checkout (the rest of it is not part of the build context).
SHIPPED = ("Dockerfile", ".dockerignore", "docker-compose.yml", "pyproject.toml", "README.md", "vault", "sql", "deploy")
# Any one command (the longest: building the base images from nothing, then the image with pip): CI has no
# per-test timeout, so a wedged engine or a stalled download must fail the test rather than hang the run.
COMMAND_WITHIN = 900.0
HEALTHY_WITHIN = 240.0  # seconds; the services' own health checks decide, this only bounds a broken start
AUTHORITY, STORE = "https://127.0.0.1:8201", "https://127.0.0.1:8202"
# The "remote machine" of the client-address check: a /30 of its own (TEST-NET-2 would be routed elsewhere).
REMOTE_HOST, REMOTE_CLIENT = "10.213.77.1", "10.213.77.2"
# What the entrypoint's steps print at each start besides the JSON logs: `cvault migrate`, the key pin.
STARTUP_LINE = re.compile(r"applied \w+/\d{4}_\w+\.sql|cvault migrate: |pin-authority-key: ")
PROJECT_PREFIX = "cvaulttest"  # every run's compose project name starts so (a new one each run)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: scripts/install-test-deps installs it (scripts/apt-packages.txt)")
    return path


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, input: str | None = None) -> str:
    try:
        # Without input, stdin is empty rather than the runner's: `exec -T` forwards stdin to the container.
        stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        done = subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=COMMAND_WITHIN, **stdin
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{' '.join(args[:4])}... still running after {COMMAND_WITHIN:.0f} s") from exc
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args[:4])}... exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class Deployment:
    root: Path
    compose: list[str]
    env: dict[str, str]  # the host's client environment

    def run(self, *args: str, input: str | None = None) -> str:
        return _run([*self.compose, *args], cwd=self.root, input=input)

    def cvault(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
        return _run(cvault_command(*args), cwd=self.root, env=env or self.env, input=input)

    def container(self, service: str) -> str:
        return self.run("ps", "-q", service).strip()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTHY_WITHIN
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            for service in ("postgres", "authority", "store"):
                cid = self.container(service)
                states[service] = "missing" if not cid else _inspect(cid, "{{.State.Health.Status}}")
            if all(state == "healthy" for state in states.values()):
                return
            time.sleep(2)
        logs = self.run("logs", "--no-color", "--tail", "30")
        raise AssertionError(f"not healthy within {HEALTHY_WITHIN:.0f} s: {states}\n{logs}")


def _inspect(container: str, template: str) -> str:
    done = subprocess.run(
        ["docker", "inspect", "--format", template, container],
        capture_output=True,
        text=True,
        check=False,
        timeout=COMMAND_WITHIN,
    )
    return done.stdout.strip()


def _engine() -> None:
    _tool("docker")
    _tool("docker-compose")
    _tool("debootstrap")
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        pytest.fail(f"no Docker engine answers (.ci/run starts dockerd in CI): {info.stderr.strip()}")


def _remove_leftover_projects() -> None:
    """An interrupted run (killed before its ``down -v``) leaves its project behind, and ``restart: unless-stopped``
    brings those containers back with the engine, holding ports 8201 and 8202: the next ``up`` would fail. Remove
    every earlier run's containers, networks and volumes first (compose names them all ``<project>_...``)."""
    for kind, listing, remove in (
        ("container", ["ls", "--all", "--format", "{{.Names}}"], ["rm", "--force", "--volumes"]),
        ("network", ["ls", "--format", "{{.Name}}"], ["rm"]),
        ("volume", ["ls", "--format", "{{.Name}}"], ["rm", "--force"]),
    ):
        names = [n for n in _run(["docker", kind, *listing], cwd=PROJECT_ROOT).split() if n.startswith(PROJECT_PREFIX)]
        if names:
            _run(["docker", kind, *remove, *names], cwd=PROJECT_ROOT)


def _base_images() -> str:
    """The ``.env`` lines naming the local base images (built unless a run with the same recipe made them)."""
    out = _run([str(PROJECT_ROOT / "deploy/base-images/build")], cwd=PROJECT_ROOT)
    assert re.fullmatch(
        r"CVAULT_POSTGRES_IMAGE=cvault-local/postgres:\w+\nCVAULT_PYTHON_IMAGE=cvault-local/python:\w+\n", out
    ), out
    return out


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    _engine()
    _remove_leftover_projects()
    images = _base_images()
    root = tmp_path_factory.mktemp("compose")
    for name in SHIPPED:
        source = PROJECT_ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "tls", "*.key", "*.token", "*.sha256")
            shutil.copytree(source, root / name, ignore=ignore)
        else:
            shutil.copy2(source, root / name)
    # The operator's steps: .env from the example with every password changed, then deploy/init.
    env_text = (root / "deploy/env.example").read_text()
    for name in ("POSTGRES_PASSWORD", "CVAULT_AUTHORITY_DB_PASSWORD", "CVAULT_STORE_DB_PASSWORD"):
        env_text = re.sub(rf"^{name}=.*$", f"{name}={secrets.token_urlsafe(12)}", env_text, flags=re.M)
    # What the registry makes impossible here: the base images are local ones.
    env_text += images  # `deploy/base-images/build >> .env`, as docs/operations.md says
    (root / ".env").write_text(env_text)
    # The Docker host's address as the "remote machine" sees it, for the client-address check below.
    _run(["deploy/init"], cwd=root, env={**os.environ, "CVAULT_TLS_NAMES": REMOTE_HOST})
    project = f"{PROJECT_PREFIX}{secrets.token_hex(4)}"
    compose = [_tool("docker-compose"), "--project-name", project, "--ansi", "never"]
    home = root / "home"
    home.mkdir()
    env = cvault_env(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "CVAULT_AUTHORITY_URL": AUTHORITY,
            "CVAULT_STORE_URL": STORE,
            "CVAULT_CACERT": str(root / "deploy/tls/ca.pem"),
        }
    )
    env.pop("CVAULT_TEST_DATABASE_URL", None)
    d = Deployment(root, compose, env)
    try:
        d.run("build")
        d.run("up", "-d")
        d.wait_healthy()
        yield d
    finally:
        subprocess.run([*compose, "down", "-v", "--remove-orphans"], cwd=root, capture_output=True, check=False)


def test_init_files_with_secrets_are_private(deployment: Deployment) -> None:
    deploy = deployment.root / "deploy"
    for name in ("authority.master.key", "store.master.key", "revocation-feed.token", "tls/ca-key.pem"):
        assert_private(deploy / name)
    token = (deploy / "revocation-feed.token").read_text()
    assert re.fullmatch(r"cvf_[A-Za-z0-9_-]{43}", token)
    digest = (deploy / "revocation-feed.sha256").read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)


def test_services_run_as_their_user_with_a_home_it_can_read(deployment: Deployment) -> None:
    for service in ("authority", "store"):
        status = deployment.run("exec", "-T", "--user", "10001", service, "cat", "/proc/1/status")
        assert re.search(r"^Uid:\s+10001\s+10001\s+10001\s+10001$", status, re.M), status
        environ = deployment.run("exec", "-T", "--user", "10001", service, "cat", "/proc/1/environ")
        home = dict(v.split("=", 1) for v in environ.split("\0") if "=" in v)["HOME"]
        assert home == "/var/lib/cvault"
        deployment.run("exec", "-T", "--user", "10001", service, "test", "-r", home)


def test_the_journey_from_bootstrap_to_restart(deployment: Deployment) -> None:
    d = deployment
    password = secrets.token_urlsafe(18)
    out = d.run(
        "exec", "-T", "authority", "cvault", "bootstrap", "--email", "owner@example.com", "--org", "acme",
        "--password-stdin", input=password + "\n",
    )  # fmt: skip
    session = re.search(r"^session: (\S+)$", out, re.M)
    assert session is not None, out
    done = journey(d.cvault, d.env, d.root, session[1], STORE)
    operator, workload = done.operator, done.workload

    _client_address_is_kept(d, operator, workload)
    _scrape_metrics(d)
    _parse_json_logs(d)

    d.run("restart")
    d.wait_healthy()
    assert d.cvault("secrets", "get", "db/url", "--vault", "prod", env=operator).strip() == SECRET
    out = d.cvault("run", "--vault", "prod", "--", "sh", "-c", 'echo "DB_URL=$DB_URL"', env=workload)
    assert out.strip() == f"DB_URL={SECRET}"


def _client_address_is_kept(d: Deployment, operator: dict[str, str], workload: dict[str, str]) -> None:
    """A client on another machine reaching a published port is audited with its own address, not a gateway's
    (docs/operations.md, "Client addresses"). The other machine is a network namespace joined to this host by a
    veth pair, so its packets come in from outside Docker, as a remote client's do."""
    bundle, org = asyncio.run(_read_bundle(workload))
    script = (
        "import os, ssl, sys, urllib.request; "
        f"context = ssl.create_default_context(cafile={str(d.root / 'deploy/tls/ca.pem')!r}); "
        f"request = urllib.request.Request('https://{REMOTE_HOST}:8202/v1/orgs/{org}/vaults/prod/secrets/db/url', "
        "headers={'Authorization': 'Bearer ' + os.environ['BUNDLE']}); "
        "print(urllib.request.urlopen(request, context=context, timeout=10).status)"
    )
    with remote_machine() as run_there:
        out = run_there([sys.executable, "-c", script], {**os.environ, "BUNDLE": bundle})
    assert out.strip() == "200"
    events = json.loads(d.cvault("audit", "query", "--secret", "db/url", "--action", "secrets.read", "--json",
                                 env=operator))  # fmt: skip
    events = events.get("events", events) if isinstance(events, dict) else events
    assert REMOTE_CLIENT in {event.get("client_addr") for event in events}, events


@contextmanager
def remote_machine() -> Iterator[Callable[[list[str], dict[str, str]], str]]:
    """A network namespace at REMOTE_CLIENT whose only way out is this host at REMOTE_HOST; runs commands there."""
    namespace, outside = f"cvt{secrets.token_hex(3)}", f"cvt{secrets.token_hex(3)}"
    ip = _tool("ip")

    def sh(*args: str) -> None:
        _run([ip, *args], cwd=PROJECT_ROOT)

    # An interrupted run's namespace outlives it, still at REMOTE_CLIENT and routed from this host: remove it.
    for name in re.findall(r"^(cvt[0-9a-f]{6})\b", _run([ip, "netns", "list"], cwd=PROJECT_ROOT), re.M):
        sh("netns", "delete", name)  # its veth goes with it, and so does the peer on this host
    sh("netns", "add", namespace)
    try:
        sh("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        sh("addr", "add", f"{REMOTE_HOST}/30", "dev", outside)
        sh("link", "set", outside, "up")
        sh("-n", namespace, "addr", "add", f"{REMOTE_CLIENT}/30", "dev", "eth0")
        sh("-n", namespace, "link", "set", "eth0", "up")
        sh("-n", namespace, "link", "set", "lo", "up")

        def run_there(args: list[str], env: dict[str, str]) -> str:
            return _run([ip, "netns", "exec", namespace, *args], cwd=PROJECT_ROOT, env=env)

        yield run_there
    finally:
        subprocess.run([ip, "link", "delete", outside], capture_output=True, check=False)
        subprocess.run([ip, "netns", "delete", namespace], capture_output=True, check=False)


async def _read_bundle(env: dict[str, str]) -> tuple[str, int]:
    async with Client.from_env(env, ca_cert=env["CVAULT_CACERT"]) as client:
        return await client.store_bundle([]), client.store_org()


def _scrape_metrics(d: Deployment) -> None:
    for service, port in (("authority", 9201), ("store", 9202)):
        # Served with the service's TLS certificate, like everything else.
        script = (
            "import ssl, urllib.request; context = ssl.create_default_context(cafile='/etc/cvault/tls/ca.pem'); "
            f"print(urllib.request.urlopen('https://127.0.0.1:{port}/metrics', context=context).read().decode())"
        )
        text = d.run("exec", "-T", service, "python", "-c", script)
        requests = [line for line in text.splitlines() if line.startswith("cvault_") and not line.startswith("#")]
        assert requests, f"{service}: no cvault_ metrics in {text[:500]}"


def _parse_json_logs(d: Deployment) -> None:
    for service in ("authority", "store"):
        lines = [line.split("| ", 1)[-1] for line in d.run("logs", "--no-color", service).splitlines()]
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert records, f"{service}: no JSON log lines"
        assert any("listening on" in str(r.get("message", r.get("msg", ""))) for r in records), records[:5]
        assert all(isinstance(r, dict) and ("level" in r or "levelname" in r) for r in records), records[:3]
        other = [line for line in lines if line.strip() and not line.startswith("{") and "Attaching" not in line]
        assert not [line for line in other if not STARTUP_LINE.match(line)]


def test_the_compose_file_needs_no_secret_mode_support(deployment: Deployment) -> None:
    """docker-compose 1.29 (Debian's) warns that secret ``mode`` is unsupported; the file does not use it."""
    done = subprocess.run(
        [*deployment.compose, "config", "--quiet"], cwd=deployment.root, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "mode" not in done.stderr.lower(), done.stderr
    assert os.path.exists(deployment.root / "deploy/revocation-feed.token")
