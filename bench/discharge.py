"""Org discharges per second: ``cvault serve authority`` with one and two workers vs a bare handler,
for a service token and for a workload's JWT (docs/workload-identity.md) in the same run.

Usage (PostgreSQL from ``CVAULT_TEST_DATABASE_URL``, ``wrk`` on the PATH)::

    PYTHONPATH=$PWD python bench/discharge.py [--rounds 3] [--duration 3] [--connections 16]

What it does:

1. creates a fresh database on that server, migrates it, bootstraps an owner
   and an org (in-process, as ``cvault bootstrap`` does);
2. starts ``cvault serve authority`` and ``cvault serve store``, logs in,
   enrols the org at the store (which gives the store's root token, with its
   third-party caveat for ``<authority>/org``), strips a service token from the
   owner's permission token, and stops the store: from here on only the
   authority is measured;
3. builds the one request a client makes for every org discharge:
   ``POST /org/.well-known/macfly/3p`` with the root token's ticket and binding
   id, authorised by the service token. Each such discharge verifies the
   service token, checks it and its ancestors are unrevoked, reads the
   membership live from the database, and audits the discharge
   (docs/authority.md);
4. each round drives, with ``wrk`` (a separate process) for ``--duration``
   seconds each: a bare aiohttp handler (one process, reads the body and answers
   a fixed JSON body of the discharge reply's size), the authority with
   ``--workers 1`` and with ``--workers 2``. Every non-2xx answer fails the run;
5. the same with a workload's JWT in place of the service token: an ES256 issuer
   registered with static keys (key sets fetched over TLS are cached, so in a
   steady state the two are the same work) and one binding; each request
   carries another of ``--jwts`` pre-signed JWTs, so the replay bound (16 uses
   per JWT) is never what is measured, but every discharge still counts its use
   in PostgreSQL, as in production;
6. prints each round's figures and, for the median, discharges/s, p50/p99
   latency, the server's CPU per request (all its processes) and the ratios
   (to the bare handler, two workers to one, and JWT to service token; the
   goal is at least half).

The machine's cores are shared by the authority, PostgreSQL and ``wrk``: two
workers can only gain what the other core has left.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

# The script's own directory is on sys.path: the helpers of the read benchmark.
from revocation import PASSWORD, Services, _keys, services_env
from secret_read import admin_url, cpu_seconds, free_port, make_database, wait_ready, wrk

from vault.authority.revocation_feed import new_feed_token
from vault.cli.bootstrap import run_bootstrap
from vault.config import load_config
from vault.macaroon import decode_token
from vault.storage.database import drop_database

BARE_APP = """
import sys
from aiohttp import web
body = sys.stdin.buffer.read()
async def handler(request):
    await request.read()
    return web.Response(status=201, body=body, content_type="application/json")
app = web.Application()
app.router.add_post("/bare", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""

LUA = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {auth}
"""

# One JWT after another: each wrk thread walks the list from its own offset, which moves with the clock so
# that successive runs do not reuse the same JWTs (each may obtain 16 discharges in its life).
JWT_LUA = """
local auths = {auths}
local body = {body}
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local i = 0
init = function(args)
  i = (os.time() * 7919 + (id or 0) * math.floor(#auths / 2)) % #auths
end
request = function()
  i = i % #auths + 1
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json", ["Authorization"] = auths[i]}}, body)
end
"""


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the bare handler did not listen on port {port}") from None
            time.sleep(0.1)


def serve(command: str, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "vault.cli", "serve", command, *extra], env=env)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def jwt_issuer(count: int, audience: str) -> tuple[dict[str, object], list[str]]:
    """An ES256 issuer's public key set and ``count`` Kubernetes-shaped JWTs it signed (10 minutes each)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "bench", "alg": "ES256", "use": "sig"}
    now = int(time.time())
    claims = {
        "iss": JWT_ISSUER,
        "sub": "system:serviceaccount:prod:api",
        "aud": [audience],
        "iat": now,
        "exp": now + 600,
        "kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "api"}},
    }
    tokens = [jwt.encode({**claims, "jti": f"bench-{i}"}, key, "ES256", headers={"kid": "bench"}) for i in range(count)]
    return {"keys": [jwk]}, tokens


JWT_ISSUER = "https://kubernetes.bench.test"


async def prepare(
    authority: str, store: str, org: int, session: str, jwks: dict[str, object]
) -> tuple[dict[str, str], str]:
    """The discharge request's JSON body and its Authorization value, and one discharge reply's text.

    Also trusts the bench's JWT issuer (static keys) in the org and binds its workload.
    """
    async with aiohttp.ClientSession() as http:
        s = Services(http, authority, store)
        status, minted = await s.call("POST", f"{authority}/v1/tokens", session, {"org": org})
        assert status == 201, minted
        auth = await s.discharge(f"{authority}/login", minted["token"], session)
        status, challenge = await s.call("GET", f"{store}/v1/orgs/{org}/enroll")
        assert status == 200, challenge
        enroll = await s.discharge(f"{authority}/org", challenge["challenge"], auth)
        status, enrolled = await s.call("POST", f"{store}/v1/orgs/{org}/enroll", enroll, {"slug": "bench"})
        assert status == 201, enrolled
        status, stripped = await s.call("POST", f"{authority}/v1/tokens/strip", auth)
        assert status == 201, stripped
        root = decode_token(enrolled["token"])
        [caveat] = root.third_party_tickets(f"{authority}/org")
        body = {
            "ticket": base64.b64encode(caveat.ticket).decode(),
            "binding_id": base64.b64encode(root.binding_id()).decode(),
        }
        status, reply = await s.call("POST", f"{authority}/org/.well-known/macfly/3p", stripped["token"], body)
        assert status == 201, reply
        issuer = {"issuer": JWT_ISSUER, "jwks": jwks, "algorithms": ["ES256"]}
        status, added = await s.call("POST", f"{authority}/v1/orgs/{org}/workload-issuers", session, issuer)
        assert status == 201, added
        binding = {"name": "api", "issuer": JWT_ISSUER, "mask": "r", "claims": {"sub": "system:serviceaccount:prod:*"}}
        status, bound = await s.call("POST", f"{authority}/v1/orgs/{org}/workloads", session, binding)
        assert status == 201, bound
        return {"body": json.dumps(body), "auth": f"Bearer {stripped['token']}"}, json.dumps(reply)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3, help="seconds per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--jwts", type=int, default=20000, help="pre-signed JWTs the JWT runs cycle through")
    args = parser.parse_args()
    admin = admin_url()

    name = f"cvault_bench_discharge_{os.getpid()}"
    dsn = asyncio.run(make_database(admin, name))
    authority_port, store_port, bare_port = free_port(), free_port(), free_port()
    authority_url, store_url = f"http://127.0.0.1:{authority_port}", f"http://127.0.0.1:{store_port}"
    feed_token, feed_digest = new_feed_token()  # the store (set-up only) follows the authority's feed
    env = {**services_env(dsn, authority_port, store_port), "CVAULT_REVOCATION_FEED_TOKEN_SHA256": feed_digest}
    results: dict[str, list[dict[str, float]]] = {
        "bare": [],
        "workers=1": [],
        "workers=2": [],
        "jwt workers=1": [],
        "jwt workers=2": [],
    }
    jwks, jwts = jwt_issuer(args.jwts, authority_url)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = asyncio.run(run_bootstrap(load_config(env), "owner@bench.test", "bench", PASSWORD))
            authority = serve("authority", env)
            try:
                wait_ready(authority_url + "/readyz")
                keys = asyncio.run(_keys(authority_url))
                store = serve(
                    "store",
                    {**env, "CVAULT_AUTHORITY_ORG_PUBLIC_KEY": keys, "CVAULT_REVOCATION_FEED_TOKEN": feed_token},
                )
                try:
                    wait_ready(store_url + "/readyz")
                    request, reply = asyncio.run(
                        prepare(authority_url, store_url, done.org.id, done.session_secret, jwks)
                    )
                finally:
                    stop(store)
            finally:
                stop(authority)
            script = Path(tmp, "discharge.lua")
            script.write_text(LUA.format(body=json.dumps(request["body"]), auth=json.dumps(request["auth"])))
            jwt_script = Path(tmp, "jwt_discharge.lua")
            auths = "{" + ",".join(json.dumps(f"Bearer {t}") for t in jwts) + "}"
            jwt_script.write_text(JWT_LUA.format(auths=auths, body=json.dumps(request["body"])))
            bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)], stdin=subprocess.PIPE)
            assert bare.stdin is not None
            bare.stdin.write(reply.encode())
            bare.stdin.close()
            try:
                wait_listening(bare_port)
                for n in range(args.rounds):
                    results["bare"].append(_drive(f"http://127.0.0.1:{bare_port}/bare", script, args, bare.pid))
                    for workers in (1, 2):
                        proc = serve("authority", env, "--workers", str(workers))
                        try:
                            wait_ready(authority_url + "/readyz")
                            url = f"{authority_url}/org/.well-known/macfly/3p"
                            results[f"workers={workers}"].append(_drive(url, script, args, proc.pid))
                            results[f"jwt workers={workers}"].append(_drive(url, jwt_script, args, proc.pid))
                        finally:
                            stop(proc)
                    print(
                        f"round {n + 1}: " + ", ".join(f"{k} {v[-1]['rps']:,.0f}/s" for k, v in results.items()),
                        flush=True,
                    )
            finally:
                stop(bare)
        finally:
            asyncio.run(drop_database(admin, name))

    medians = {k: statistics.median(r["rps"] for r in v) for k, v in results.items()}
    print(f"\n{args.rounds} rounds of {args.duration} s, {args.connections} connections; medians:")
    for k, v in results.items():
        p50 = statistics.median(r["p50"] for r in v)
        p99 = statistics.median(r["p99"] for r in v)
        cpu = statistics.median(r["cpu_us"] for r in v)
        print(f"  {k:14} {medians[k]:9,.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:7.2f} ms   CPU {cpu:5.0f} us/request")
    print(f"org discharges, 1 worker / bare handler:  {medians['workers=1'] / medians['bare']:.1%}")
    print(f"org discharges, 2 workers / bare handler: {medians['workers=2'] / medians['bare']:.1%}")
    print(f"2 workers / 1 worker: {medians['workers=2'] / medians['workers=1']:.2f}x")
    for workers in (1, 2):
        ratio = medians[f"jwt workers={workers}"] / medians[f"workers={workers}"]
        print(f"JWT discharges / service-token discharges, {workers} worker(s): {ratio:.2f} (goal: at least 0.5)")
    return 0


def _drive(url: str, script: Path, args: argparse.Namespace, pid: int) -> dict[str, float]:
    """One ``wrk`` run, with the server's CPU per request (``pid`` and its worker processes)."""
    before = cpu_seconds(pid)
    figures = wrk(url, {}, args.duration, args.connections, 2, script=script)
    figures["cpu_us"] = (cpu_seconds(pid) - before) / max(figures["requests"], 1.0) * 1e6
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
