"""The first journey, through the real ``cvault`` command as a new user would type it.

A real ``cvault dev`` subprocess (fresh database, free ports) runs both
services; every step is a separate ``python -m vault.cli`` process with its own
environment: the operator (logged in, root store token), and a workload with a
clean environment holding only its URLs and its two credentials.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import stat
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port

from tests.support.cvault_command import PROJECT_ROOT, cvault_command, cvault_env
from tests.support.mailbox import dev_mail_code
from tests.support.readme_journeys import Ran, Shell, cvault_on_path, fresh_env, readme_blocks

READY_BOUND = 90.0
SECRETS = {"db/url": "postgres://app:hunter2@db/app", "api/key": "k-8f3a9c", "smtp/password": "mail-pass-77"}


@dataclass
class Result:
    status: int
    out: str
    err: str


async def cvault(*args: str, env: Mapping[str, str], stdin: str | None = None) -> Result:
    process = await asyncio.create_subprocess_exec(
        *cvault_command(*args),
        env=dict(env),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin is not None else None), 120)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


@dataclass
class Dev:
    exports: dict[str, str]
    password: str
    data_dir: Path


@pytest.fixture
async def dev(database_url: str, tmp_path: Path) -> AsyncIterator[Dev]:
    a_port, s_port = unused_port(), unused_port()
    home = tmp_path / "dev-home"
    env = cvault_env(
        {
            "CVAULT_DATABASE_URL": database_url,
            "CVAULT_AUTHORITY_LISTEN": f"127.0.0.1:{a_port}",
            "CVAULT_STORE_LISTEN": f"127.0.0.1:{s_port}",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
        }
    )
    data_dir = tmp_path / "dev-data"
    process = await asyncio.create_subprocess_exec(
        *cvault_command("dev", "--data-dir", str(data_dir)),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while True:
            raw = await asyncio.wait_for(process.stdout.readline(), READY_BOUND)
            if not raw:
                err = await process.stderr.read() if process.stderr else b""
                raise AssertionError(f"cvault dev exited early: {lines} {err.decode()[-2000:]}")
            lines.append(raw.decode().rstrip("\n"))
            if lines[-1].startswith("# then"):
                break
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", "\n".join(lines), re.M))
        password = json.loads((data_dir / "dev.json").read_text())["password"]
        yield Dev(exports, password, data_dir)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.communicate(), READY_BOUND)
            except TimeoutError:
                process.kill()
                await process.wait()


def _clean_env(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """Nothing inherited but PATH and where the code is: a workload's view of the world."""
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(PROJECT_ROOT), "HOME": str(home), **extra}


# -- the README's "Ten minutes as an operator" and "as a workload", run as pasted --------------------------------

# What a reader types at the prompts, and the files they bring (the README names them).
_FIRST_URL, _NEW_URL, _NEXT_URL = (
    "postgres://app:one@db/app",
    "postgres://app:two@db/app",
    "postgres://app:three@db/app",
)
_BOB_PASSWORD = "bobs-new-password-1"


def _issued_id(ran: Ran) -> str:
    found = re.search(r"\bid ([0-9a-f-]{36})", ran.err)
    assert found, ran
    return found.group(1)


def _stop_readme_dev(op: Shell) -> None:
    pid_file = op.cwd / ".cvault-dev.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    op.run('kill -INT "$(cat .cvault-dev.pid)"')  # the README's own way to stop it
    for _ in range(600):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


async def test_readme_operator_and_workload_sections_run_as_pasted(database_url: str, tmp_path: Path) -> None:
    """Every line of both sections, in a fresh home and directory with only ``cvault`` on PATH."""
    bin_dir = cvault_on_path(tmp_path / "bin")
    services = {
        "CVAULT_DATABASE_URL": database_url,  # this machine's PostgreSQL, not an embedded one
        "CVAULT_AUTHORITY_LISTEN": f"127.0.0.1:{unused_port()}",
        "CVAULT_STORE_LISTEN": f"127.0.0.1:{unused_port()}",
    }
    op = Shell(tmp_path / "operator", fresh_env(tmp_path / "operator-home", bin_dir, services))
    op.cwd.mkdir()
    (op.cwd / "new-url.txt").write_text(_NEW_URL)
    (op.cwd / "next-url.txt").write_text(_NEXT_URL)
    operator, issue = readme_blocks("Ten minutes as an operator")
    invitation: dict[str, str] = {}
    try:
        for line in operator:
            typed = ""
            if line.startswith("cvault login"):
                typed = json.loads((op.cwd / ".cvault-dev" / "dev.json").read_text())["password"] + "\n"
            elif line.startswith("cvault secrets set db/url --vault prod ") and "<" not in line:
                typed = _FIRST_URL + "\n"
            if "bob, on his machine" in line:
                urls = {k: op.env[k] for k in ("CVAULT_AUTHORITY_URL", "CVAULT_STORE_URL")}
                bob = Shell(tmp_path / "bob", fresh_env(tmp_path / "bob-home", bin_dir, urls), replace=invitation)
                bob.cwd.mkdir()
                (bob.cwd / "bob.password").write_text(_BOB_PASSWORD + "\n")
                ran = bob.must(line)
                # The code goes to the mailbox, never to the caller (who is told only its shape, "cvm_...").
                assert not re.search(r"cvm_[A-Za-z0-9_-]{16}", ran.out + ran.err), ran
                # cvault dev has no relay: it writes the message to its data directory, bob's mailbox here.
                invitation["MAILED"] = dev_mail_code(op.cwd / ".cvault-dev" / "mail", "bob@example.com")
                continue
            if line.startswith("cvault orgs accept") and "MAILED" in line:
                ran = bob.must(line)
                assert "reader of dev" in ran.out and "logged in as bob@example.com" in ran.out, ran
                assert json.loads(bob.must("cvault orgs list --json").out)[0]["slug"] == "dev"
                continue
            ran = op.must(line, typed)
            if line.startswith("cvault orgs invite"):
                found = re.search(r"cvault orgs accept (\S+) --code (\S+)", ran.out)
                assert found, ran
                invitation.update({"ID": found.group(1), "CODE": found.group(2)})
        session = op.env["HOME"] + "/.config/cvault/session.json"
        assert stat.S_IMODE(os.stat(session).st_mode) == 0o600
        assert op.must("cvault secrets get db/url --vault prod").out.strip() == _NEXT_URL
        versions = op.must("cvault secrets versions db/url --vault prod --json").out
        assert [v["state"] for v in json.loads(versions)["versions"]][:1] == ["destroyed"], versions

        for line in issue:
            if "tokens revoke ID" in line:
                op.replace["ID"] = _issued_id(op.ran[-1])
            ran = op.must(line)
            op.replace.pop("ID", None)
            if "tokens revoke" in line:
                assert "revoked 1 token(s)" in ran.out, ran
            if "tokens debug" in line:
                assert "store token" in ran.out and "needs     a discharge from" in ran.out, ran

        # -- the workload: the two credentials the operator issues (for this host), on another machine -----------
        op.replace["10.0.0.5/32"] = "127.0.0.1/32"  # the workload's host here
        for line in issue[:2]:
            op.must(line)
        for name, value in (("api/key", "k-8f3a9c"), ("app/db/url", "postgres://app:app@db/app")):
            op.must(f"printf %s {value} | cvault secrets set {name} --vault prod")
        wl = Shell(tmp_path / "workload", fresh_env(tmp_path / "workload-home", bin_dir))
        place = {"run-secrets": "/run/secrets/", "cache": "/var/cache/", "run-app": "/run/app/"}
        for here, example in place.items():
            (tmp_path / here).mkdir()
            wl.replace[example] = f"{tmp_path / here}/"
        wl.replace.update({"https://store.internal": op.env["CVAULT_STORE_URL"]})
        wl.replace.update({"https://authority.internal": op.env["CVAULT_AUTHORITY_URL"]})
        for mine, theirs in (("workload.store-token", "store-token"), ("workload.auth-token", "auth-token")):
            (tmp_path / "run-secrets" / theirs).write_text((op.cwd / mine).read_text())
        wl.cwd.mkdir()
        env_file = tmp_path / "run-app" / ".env"
        server = wl.cwd / "server"
        server.write_text(
            "#!/bin/sh\n"
            'echo "DB_URL=$DB_URL"; echo "API_KEY=$API_KEY"; echo "DATABASE_URL=$DATABASE_URL"\n'
            f'if [ -f {env_file} ]; then sed "s/^/ENV_FILE /" {env_file}; fi\n'
        )
        server.chmod(0o755)
        (wl.cwd / "env.map").write_text("app/db/url=DATABASE_URL\n")
        (workload,) = readme_blocks("Ten minutes as a workload")
        for line in workload:
            ran = wl.must(line)
            if "./server" not in line:
                continue
            child = dict(x.split("=", 1) for x in ran.out.splitlines() if "=" in x and not x.startswith("ENV_FILE"))
            if "--prefix app/" in line:
                assert child["DATABASE_URL"] == "postgres://app:app@db/app" and child["DB_URL"] == "", ran
            else:
                assert child["DB_URL"] == _NEXT_URL and child["API_KEY"] == "k-8f3a9c", ran
            if "--env-file" in line:
                written = [x.split()[1].split("=")[0] for x in ran.out.splitlines() if x.startswith("ENV_FILE")]
                assert sorted(written) == ["API_KEY", "APP_DB_URL", "DB_URL"], ran
        assert stat.S_IMODE((tmp_path / "cache" / "app.secrets").stat().st_mode) == 0o600
        (python,) = readme_blocks("Ten minutes as a workload", "python")
        code = "\n".join(python)
        wl.env["PYTHONPATH"] = str(PROJECT_ROOT)
        wl.must(f"{shlex.quote(sys.executable)} - <<'PY'\n{code}\nassert url == {_NEXT_URL!r}\nPY")
    finally:
        _stop_readme_dev(op)


async def test_operator_workload_auditor_from_a_fresh_cvault_dev(dev: Dev, tmp_path: Path) -> None:
    urls = {k: dev.exports[k] for k in ("CVAULT_AUTHORITY_URL", "CVAULT_STORE_URL")}
    op_home = tmp_path / "operator"
    op = _clean_env(
        op_home,
        {**urls, "CVAULT_STORE_TOKEN": dev.exports["CVAULT_STORE_TOKEN"], "XDG_CONFIG_HOME": str(op_home / "cfg")},
    )

    # -- the operator ----------------------------------------------------------------------
    r = await cvault("login", "--email", "owner@cvault.dev", "--password-stdin", env=op, stdin=dev.password + "\n")
    assert r.status == 0, r
    session_file = op_home / "cfg" / "cvault" / "session.json"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(session_file.parent.stat().st_mode) == 0o700
    assert dev.password not in session_file.read_text()

    assert (await cvault("vaults", "create", "prod", env=op)).status == 0
    for name, value in SECRETS.items():
        r = await cvault("secrets", "set", name, "--vault", "prod", env=op, stdin=value)
        assert r.status == 0, r
        assert value not in r.out + r.err
    r = await cvault("secrets", "list", "--vault", "prod", env=op)
    assert r.status == 0 and all(n in r.out for n in SECRETS) and all(v not in r.out for v in SECRETS.values())

    r = await cvault("store", "tokens", "mint", "--mask", "r", "--vault", "prod", "--json", env=op)
    assert r.status == 0, r
    workload_store = json.loads(r.out)
    r = await cvault(
        "tokens", "create", "--org", "dev", "--mask", "r", "--service", "--cidr", "127.0.0.1/32", "--json", env=op
    )
    assert r.status == 0, r
    service = json.loads(r.out)
    assert service["parent"]

    # -- the workload: a clean environment with only its two credentials ------------------------
    wl = _clean_env(
        tmp_path / "workload",
        {**urls, "CVAULT_STORE_TOKEN": workload_store["token"], "CVAULT_AUTH_TOKEN": service["token"]},
    )
    fallback = tmp_path / "workload" / "secrets.cache"
    fallback.parent.mkdir()
    r = await cvault("run", "--vault", "prod", "--fallback", str(fallback), "--write-fallback", "--", "env", env=wl)
    assert r.status == 0, r
    child = dict(line.split("=", 1) for line in r.out.splitlines() if "=" in line)
    assert child["DB_URL"] == SECRETS["db/url"]
    assert child["API_KEY"] == SECRETS["api/key"]
    assert child["SMTP_PASSWORD"] == SECRETS["smtp/password"]
    assert "CVAULT_STORE_TOKEN" not in child and "CVAULT_AUTH_TOKEN" not in child
    assert r.err == ""
    assert stat.S_IMODE(fallback.stat().st_mode) == 0o600
    assert all(v.encode() not in fallback.read_bytes() for v in SECRETS.values())

    # The workload's read-only token cannot write.
    r = await cvault("secrets", "set", "db/url", "--vault", "prod", env=wl, stdin="evil")
    assert r.status == 4 and "(unauthorized)" in r.err  # 4: the server refused

    # Store unreachable: the encrypted cache boots the workload, and says so.
    down = {**wl, "CVAULT_STORE_URL": f"http://127.0.0.1:{unused_port()}"}
    r = await cvault("run", "--vault", "prod", "--fallback", str(fallback), "--", "env", env=down)
    assert r.status == 0, r
    assert f"DB_URL={SECRETS['db/url']}" in r.out
    assert "unreachable" in r.err and str(fallback) in r.err
    assert all(v not in r.err for v in SECRETS.values())

    # -- staged rotation ----------------------------------------------------------------------
    r = await cvault("secrets", "rotate", "db/url", "--vault", "prod", env=op, stdin="postgres://app:rotated@db/app")
    assert r.status == 0 and "pending" in r.out, r
    r = await cvault("run", "--vault", "prod", "--only", "db/url", "--", "env", env=wl)
    assert f"DB_URL={SECRETS['db/url']}" in r.out  # pending is not current yet
    r = await cvault("secrets", "rotate", "db/url", "--vault", "prod", "--promote", env=op)
    assert r.status == 0, r
    r = await cvault("run", "--vault", "prod", "--only", "db/url", "--", "env", env=wl)
    assert r.status == 0 and "DB_URL=postgres://app:rotated@db/app" in r.out, r

    # -- the auditor: who read db/url, with which token, on whose authority ---------------------------
    owner_id = json.loads(session_file.read_text())["user_id"]
    r = await cvault("audit", "query", "--secret", "db/url", "--json", env=op)
    assert r.status == 0, r
    events = json.loads(r.out)
    reads = [e for e in events if e["action"] == "secrets.read" and e["token_id"] == workload_store["id"]]
    assert len(reads) >= 3
    for e in reads:
        assert e["outcome"] == "ok" and e["secret"] == "db/url"
        assert e["actor"] == str(owner_id)  # the operator who stripped the service token
        assert e["lineage"][:2] == [service["id"], service["parent"]]
    assert all(v not in r.out for v in SECRETS.values())
    r = await cvault("audit", "query", "--secret", "db/url", env=op)
    assert r.status == 0 and workload_store["id"] in r.out and "owner@cvault.dev" in r.out

    # -- revoking the service token stops the workload, with a clear message and no secrets -------
    r = await cvault("tokens", "revoke", service["id"], env=op)
    assert r.status == 0 and service["id"] in r.out, r
    for args in (
        ("run", "--vault", "prod", "--", "env"),
        ("run", "--vault", "prod", "--fallback", str(fallback), "--", "env"),
    ):
        r = await cvault(*args, env=wl)
        assert r.status == 4, r
        assert "revoked" in r.err and re.search(r"\([a-z_]+\)$", r.err.strip()), r.err
        assert len(r.err.strip().splitlines()) == 1
        assert r.out == "" and "DB_URL" not in r.err
        assert all(v not in r.out + r.err for v in [*SECRETS.values(), "postgres://app:rotated@db/app"])


async def test_tokens_debug_says_truncated_not_unauthorized(tmp_path: Path) -> None:
    env = _clean_env(tmp_path, {})
    full = "cv1_lJPECAAAAAAAAAADxBANhNr7-BHAC-Z59uEHB0CGwrZodHRwOi8vMTI3LjAuMC4xOjE4MjAylACSzwMcyEa1PF2QPwuTumh0dHA6"
    r = await cvault("tokens", "debug", full[:60], env=env)
    assert r.status == 1
    assert "truncated or corrupt" in r.err and "unauthorized" not in r.err.lower()


async def test_usage_errors_exit_2_and_missing_credentials_exit_1(tmp_path: Path) -> None:
    env = _clean_env(tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert (await cvault("secrets", env=env)).status == 2
    assert (await cvault("run", "--bogus", env=env)).status == 2
    r = await cvault("run", "--", "env", env=env)
    assert r.status == 1 and "CVAULT_STORE_TOKEN" in r.err and "(unauthenticated)" in r.err


# -- the auditor's ten minutes (README "Ten minutes as an auditor"), with only an auditor's credentials -----------


async def test_auditor_journey_with_only_an_auditors_credentials(dev: Dev, tmp_path: Path) -> None:
    import aiohttp

    urls = {k: dev.exports[k] for k in ("CVAULT_AUTHORITY_URL", "CVAULT_STORE_URL")}
    op_home = tmp_path / "operator"
    op = _clean_env(
        op_home,
        {**urls, "CVAULT_STORE_TOKEN": dev.exports["CVAULT_STORE_TOKEN"], "XDG_CONFIG_HOME": str(op_home / "cfg")},
    )
    r = await cvault("login", "--email", "owner@cvault.dev", "--password-stdin", env=op, stdin=dev.password + "\n")
    assert r.status == 0, r
    assert (await cvault("vaults", "create", "prod", env=op)).status == 0
    assert (await cvault("secrets", "set", "db/url", "--vault", "prod", env=op, stdin=SECRETS["db/url"])).status == 0
    r = await cvault("secrets", "get", "db/url", "--vault", "prod", env=op)
    assert r.status == 0 and SECRETS["db/url"] in r.out, r

    # The owner invites the auditor and hands over a store token with `a`.
    r = await cvault("orgs", "invite", "dev", "auditor@example.com", "--role", "auditor", "--json", env=op)
    assert r.status == 0, r
    invitation = json.loads(r.out)
    r = await cvault("store", "tokens", "mint", "--mask", "a", env=op)
    assert r.status == 0, r
    token_file = tmp_path / "auditor.store-token"
    token_file.write_text(r.out)

    # The auditor: a clean environment, no database URL, no owner's anything.
    home = tmp_path / "auditor"
    au = _clean_env(home, {**urls, "XDG_CONFIG_HOME": str(home / "cfg")})
    password = "auditor's own passphrase 1"
    accept = ("orgs", "accept", invitation["id"], "--code", invitation["code"], "--password-stdin")
    r = await cvault(*accept, env=au, stdin=password + "\n")
    assert r.status == 0 and "verification" in r.err, r
    verification = dev_mail_code(dev.data_dir / "mail", "auditor@example.com")
    r = await cvault(*accept, "--verification", verification, env=au, stdin=password + "\n")
    assert r.status == 0 and "auditor of dev" in r.out, r
    r = await cvault("login", "--email", "auditor@example.com", "--password-stdin", env=au, stdin=password + "\n")
    assert r.status == 0, r
    au["CVAULT_STORE_TOKEN"] = token_file.read_text().strip()
    assert "CVAULT_DATABASE_URL" not in au

    r = await cvault("audit", "query", "--secret", "db/url", env=au)
    assert r.status == 0 and "secrets.read" in r.out and "owner@cvault.dev" in r.out, r
    assert SECRETS["db/url"] not in r.out
    r = await cvault("audit", "query", "--limit", "20", "--json", env=au)
    assert r.status == 0, r
    newest = json.loads(r.out)
    assert 0 < len(newest) <= 20 and [e["seq"] for e in newest] == sorted((e["seq"] for e in newest), reverse=True)
    r = await cvault("audit", "query", "--outcome", "denied", "--since", "24h", "--json", env=au)
    assert r.status == 0 and isinstance(json.loads(r.out), list), r

    r = await cvault("audit", "verify", env=au)
    assert r.status == 0 and "intact" in r.out, r
    export = home / "audit.jsonl"
    r = await cvault("audit", "export", "-o", str(export), env=au)
    assert r.status == 0, r
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    r = await cvault("audit", "verify", "--file", str(export), env=au)
    assert r.status == 0 and "intact" in r.out, r
    lines = export.read_text().splitlines(keepends=True)
    for broken in ([], lines[:-1]):
        damaged = home / "damaged.jsonl"
        damaged.write_text("".join(broken))
        r = await cvault("audit", "verify", "--file", str(damaged), env=au)
        assert r.status == 3 and "BROKEN" in r.out, r

    # The console, with the same credentials: chain status and names without a database URL.
    port = unused_port()
    console = await asyncio.create_subprocess_exec(
        *cvault_command("audit", "console", "--listen", f"127.0.0.1:{port}"),
        env=au,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert console.stdout is not None
    try:
        line = (await asyncio.wait_for(console.stdout.readline(), READY_BOUND)).decode()
        assert "open http://" in line, line
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/chain") as resp:
                chain = await resp.text()
            async with http.get(f"http://127.0.0.1:{port}/") as resp:
                timeline = await resp.text()
        assert 'class="status intact"' in chain
        assert "owner@cvault.dev" in timeline and 'id="show-own"' in timeline
    finally:
        console.send_signal(signal.SIGTERM)
        await asyncio.wait_for(console.communicate(), READY_BOUND)
