"""Secret read throughput: the store (verify 5-caveat token + discharge, one query, durable audit) vs a bare handler.

Usage (PostgreSQL from ``CVAULT_TEST_DATABASE_URL``, ``wrk`` on the PATH)::

    PYTHONPATH=$PWD python bench/secret_read.py [--rounds 5] [--duration 5] [--connections 32] [--deployment]
        [--workers 1,2] [--baseline DIR] [--vault-api]

What it does:

1. creates a fresh database on that server and migrates it;
2. starts ``cvault serve store`` in its own process. The authority's part is
   played by the bench itself: it holds an X25519 key pair standing in for the
   authority's org discharger (the store is configured with its public key) and
   mints the org discharges with it, exactly as the authority would
   (``ValidityWindow``, ``Organization``, ``UserID``, ``TokenLineage``, bound).
   Starting the real authority would only add a login step outside the
   measured path;
3. enrols an org, creates a vault, writes one secret, and builds a store token
   with 5 caveats (``Organization``, ``3P``, ``Vaults``, ``Secrets``,
   ``ValidityWindow``) plus its bound discharge;
4. starts a bare aiohttp handler in another process returning a fixed JSON
   body of the same size as the store's reply;
5. drives each with ``wrk`` (a separate process) for ``--duration`` seconds,
   alternating store and bare runs ``--rounds`` times; prints each round's
   ratio (two runs seconds apart) and, for the median round, requests/s, p50
   and p99 latency, CPU per request and the ratio. Every store read in the
   run is audited durably (the bench counts the audit rows afterwards).

With ``--deployment`` the bare handler is replaced by the store itself as
deployed: four store processes on the same database and token, plain (the
baseline), with metrics on (``metrics_token``), with TLS (a certificate from a
throwaway local CA), and with both; each round runs all four, and each
variant's ratio to plain is taken within the round.

With ``--workers 1,2`` the store is served once per count (``cvault serve store
--workers N``, each on its own port, same database, key and token); each round
drives every one of them and the bare handler, in an order that rotates from
round to round, and the bench prints each count's ratio to the bare handler
and each count's factor over the first (median of the rounds' factors).

With ``--baseline DIR`` a second store is served from the checkout in DIR
(``PYTHONPATH=DIR``, started in DIR), on the same database, master key and
published URL, so the same token reads the same secret from both. Each round
runs this checkout's store, the baseline's and the bare handler, in an order
that rotates from round to round; the bench prints each store's ratio to the
bare handler per round and the median, and the difference in points (this
checkout minus the baseline) per round and its median. This is how a change
is shown to keep the secret read's ratio: ``git worktree add /tmp/base main``
before the change, then ``--baseline /tmp/base`` after it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg

from vault.config import default_sql_dir
from vault.crypto.keyring import generate_key
from vault.crypto.ticket_keys import TicketKeyPair
from vault.macaroon import ALL, READ, decode_token, encode_bundle, encode_token, start_discharge, ticket_sender
from vault.macaroon import bind as bind_discharge
from vault.macaroon.caveats import Organization, OrgSlug, Secrets, TokenLineage, UserID, ValidityWindow, Vaults
from vault.storage.database import create_database, drop_database, with_database
from vault.storage.migrations import migrate
from vault.storage.pool import close_pool, create_pool

ORG = 4242
VAULT = "prod"
SECRET = "db/url"
VALUE = "postgres://app:s3cr3t-password-for-the-benchmark@db.internal:5432/app?sslmode=require"

BARE_APP = """
import sys
from aiohttp import web
body = sys.stdin.buffer.read()
async def handler(request):
    return web.Response(body=body, content_type="application/json")
app = web.Application()
app.router.add_get("/bare", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def admin_url() -> str:
    """The PostgreSQL the bench creates its database on: ``CVAULT_TEST_DATABASE_URL``, or exit saying so."""
    admin = os.environ.get("CVAULT_TEST_DATABASE_URL")
    if not admin:
        raise SystemExit("needs CVAULT_TEST_DATABASE_URL (a PostgreSQL server the bench may create a database on)")
    return admin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(url: str, timeout: float = 30.0, *, insecure: bool = False) -> None:
    # insecure: the bench's own throwaway CA; only readiness is checked here.
    context = ssl._create_unverified_context() if insecure else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become ready")


def http(method: str, url: str, auth: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", f"Bearer {auth}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Authority:
    """Plays the authority's org discharger with its own key pair."""

    def __init__(self, url: str) -> None:
        self.location = f"{url}/org"
        self.keys = TicketKeyPair.generate()

    def discharge(self, token_text: str, org: int, user: int) -> str:
        token = decode_token(token_text)
        [caveat] = token.third_party_tickets(self.location)
        shared = self.keys.shared_key(ticket_sender(caveat.ticket))
        _ticket, d = start_discharge(caveat.ticket, shared, self.location)
        now = int(time.time())
        d = d.attenuate(
            [
                ValidityWindow(now, now + 3600),
                Organization(org, ALL),
                # The store enrols an org under the slug its authority attests (as dischargers.py does).
                OrgSlug("bench"),
                UserID(user),
                TokenLineage("00000000-0000-5000-8000-000000000001"),
            ]
        )
        return encode_bundle([token, bind_discharge(d, token.binding_id()).finalize()])


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGINT to every process (a clean shutdown), then wait; kill what has not ended in 15 s."""
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def store_env(dsn: str, authority: Authority, published: str, port: int) -> dict[str, str]:
    """The environment of a bench's ``cvault serve store``: a fresh master key, ``authority``'s key, no feed."""
    env = {
        **os.environ,
        "CVAULT_DATABASE_URL": dsn,
        "CVAULT_MASTER_KEY": base64.b64encode(generate_key()).decode(),
        "CVAULT_STORE_URL": published,
        "CVAULT_LISTEN_INSECURE": "true",
        "CVAULT_STORE_LISTEN": f"127.0.0.1:{port}",
        "CVAULT_AUTHORITY_URL": "http://127.0.0.1:1",
        "CVAULT_AUTHORITY_ORG_PUBLIC_KEY": base64.b64encode(authority.keys.public_key).decode(),
        "CVAULT_ORG_DISCHARGE_TTL": "3600",
        # No authority runs here, so no revocation feed to follow (bench/revocation.py measures that path).
        "CVAULT_REVOCATION_FEED": "false",
        "CVAULT_LOG_LEVEL": "WARNING",
    }
    env.pop("CVAULT_TEST_DATABASE_URL", None)
    return env


def wrk(
    url: str, headers: dict[str, str], duration: int, connections: int, threads: int, *, script: Path | None = None
) -> dict[str, float]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script is not None:  # a Lua script setting the method, body and headers (bench/discharge.py)
        cmd += ["-s", str(script)]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors against {url}:\n{out}")

    def latency(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    assert rps and total, out
    return {"rps": float(rps.group(1)), "p50": latency("50%"), "p99": latency("99%"), "requests": float(total.group(1))}


async def make_database(admin_dsn: str, name: str) -> str:
    await create_database(admin_dsn, name)
    dsn = with_database(admin_dsn, name)
    pool = await create_pool(dsn, max_size=1)
    try:
        await migrate(pool, sql_dir=default_sql_dir())
    finally:
        await close_pool(pool)
    return dsn


async def count_reads(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM store.audit_events WHERE action = 'secrets.read' AND outcome = 'ok'"
        )
        return n
    finally:
        await conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and of its children still running (its worker processes)."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL server process on this machine (other load on the server included)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, _, rest = stat.partition(" (")[2].rpartition(")")
        if name.startswith("postgres"):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def compare_deployments(
    args: argparse.Namespace, env: dict[str, str], procs: list[subprocess.Popen[bytes]], read_url: str, bundle: str
) -> int:
    """The same read against store processes that differ only in metrics and TLS (see ``--deployment``)."""
    from vault.crypto.local_ca import LocalCA

    tls_dir = tempfile.mkdtemp(prefix="cvault-bench-tls-")
    issued = LocalCA.create("bench CA").issue(Path(tls_dir), "server", ["127.0.0.1"])
    metrics = {"CVAULT_METRICS_TOKEN": "bench-metrics-token-0123456789"}
    tls = {"CVAULT_TLS_CERT_FILE": str(issued.cert_file), "CVAULT_TLS_KEY_FILE": str(issued.key_file)}
    variants = {"plain": {}, "metrics": metrics, "tls": tls, "tls+metrics": {**tls, **metrics}}
    urls: dict[str, str] = {}
    pids: dict[str, int] = {}
    for label, extra in variants.items():
        port = free_port()
        scheme = "https" if "tls" in label else "http"
        variant_env = {**env, **extra, "CVAULT_STORE_LISTEN": f"127.0.0.1:{port}"}
        procs.append(subprocess.Popen([sys.executable, "-m", "vault.cli", "serve", "store"], env=variant_env))
        pids[label] = procs[-1].pid
        urls[label] = read_url.replace(read_url.split("/v1/")[0], f"{scheme}://127.0.0.1:{port}")
        wait_ready(f"{scheme}://127.0.0.1:{port}/healthz", insecure=scheme == "https")
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in variants}
    labels = list(urls)
    for i in range(args.rounds):
        # Each round starts with the next variant, so no variant always runs first (or after a pause).
        for label in labels[i % len(labels) :] + labels[: i % len(labels)]:
            cpu = cpu_seconds(pids[label])
            run = wrk(urls[label], {"Authorization": f"Bearer {bundle}"}, args.duration, args.connections, args.threads)
            # CPU per read of the store process: far steadier than requests/s on a loaded machine.
            run["cpu_us"] = (cpu_seconds(pids[label]) - cpu) / run["requests"] * 1e6
            runs[label].append(run)
    print(
        f"secret read, store as deployed ({args.connections} connections, {args.duration} s per run, "
        f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs shared with PostgreSQL)"
    )
    print("rounds (requests/s):  " + "  ".join(f"{label:>12}" for label in variants))
    for i in range(args.rounds):
        print(f"  {i + 1}:{'':16}" + "  ".join(f"{runs[label][i]['rps']:>12.0f}" for label in variants))
    print(f"\n{'':14}{'requests/s':>12}{'p99 ms':>10}{'CPU us/read':>13}{'req/s vs plain: median (range)':>36}")
    for label, results in runs.items():
        ratios = sorted(r["rps"] / p["rps"] for r, p in zip(results, runs["plain"], strict=True))
        rps = sorted(r["rps"] for r in results)[len(results) // 2]
        p99 = sorted(r["p99"] for r in results)[len(results) // 2]
        cpu_us = sorted(r["cpu_us"] for r in results)[len(results) // 2]
        spread = f"{ratios[len(ratios) // 2]:.1%} ({ratios[0]:.1%} to {ratios[-1]:.1%})"
        print(f"{label:14}{rps:>12.0f}{p99:>10.2f}{cpu_us:>13.0f}{spread:>36}")
    print("(each ratio compares runs made seconds apart in one round; medians of requests/s and p99 over rounds)")
    return 0


def start_bare(body: bytes, procs: list[subprocess.Popen[bytes]]) -> tuple[subprocess.Popen[bytes], str]:
    """The bare handler, answering ``body``, in a process of its own; returns it and its URL once it answers."""
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(BARE_APP)
    bare = subprocess.Popen([sys.executable, f.name, str(port)], stdin=subprocess.PIPE)
    procs.append(bare)
    assert bare.stdin is not None
    bare.stdin.write(body)
    bare.stdin.close()
    url = f"http://127.0.0.1:{port}/bare"
    wait_ready(url)
    return bare, url


def compare_workers(
    args: argparse.Namespace,
    env: dict[str, str],
    procs: list[subprocess.Popen[bytes]],
    read_url: str,
    bundle: str,
    body: bytes,
) -> int:
    """The same read against the store served with each ``--workers`` count, and the bare handler (one process)."""
    bare, bare_url = start_bare(body, procs)
    targets: dict[str, tuple[str, int, dict[str, str]]] = {"bare": (bare_url, bare.pid, {})}
    auth = {"Authorization": f"Bearer {bundle}"}
    for count in args.workers:
        port = free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "vault.cli", "serve", "store", "--workers", str(count)],
                env={**env, "CVAULT_STORE_LISTEN": f"127.0.0.1:{port}"},
            )
        )
        wait_ready(f"http://127.0.0.1:{port}/readyz")
        url = read_url.replace(read_url.split("/v1/")[0], f"http://127.0.0.1:{port}")
        status, reply = http("GET", url, bundle)
        assert status == 200 and reply["value"] == VALUE, reply
        targets[f"workers={count}"] = (url, procs[-1].pid, auth)
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in targets}
    labels = list(targets)
    for i in range(args.rounds):
        # Each round starts with the next target, so none always runs first (or right after another).
        for label in labels[i % len(labels) :] + labels[: i % len(labels)]:
            url, pid, headers = targets[label]
            cpu = cpu_seconds(pid)
            run = wrk(url, headers, args.duration, args.connections, args.threads)
            run["cpu_us"] = (cpu_seconds(pid) - cpu) / run["requests"] * 1e6  # every worker process's CPU
            runs[label].append(run)

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    print(
        f"secret read, store with --workers {','.join(map(str, args.workers))} vs the bare handler (one process; "
        f"{args.connections} connections, {args.duration} s per run, wrk -t{args.threads}, {args.rounds} "
        f"interleaved rounds, {os.cpu_count()} CPUs shared with PostgreSQL and wrk)"
    )
    print("rounds (requests/s):  " + "".join(f"{label:>12}" for label in labels))
    for i in range(args.rounds):
        print(f"  {i + 1:>2}:{'':17}" + "".join(f"{runs[label][i]['rps']:>12.0f}" for label in labels))
    first = f"workers={args.workers[0]}"
    print(f"\n{'':12}{'requests/s':>12}{'p99 ms':>9}{'CPU us/read':>13}{'vs bare':>9}{'vs ' + first:>16}")
    for label in labels:
        results = runs[label]
        to_bare = median([r["rps"] / b["rps"] for r, b in zip(results, runs["bare"], strict=True)])
        factor = median([r["rps"] / f["rps"] for r, f in zip(results, runs[first], strict=True)])
        print(
            f"{label:12}{median([r['rps'] for r in results]):>12.0f}{median([r['p99'] for r in results]):>9.2f}"
            f"{median([r['cpu_us'] for r in results]):>13.0f}{to_bare:>9.1%}{factor:>15.2f}x"
        )
    print("(ratios and factors: medians of each round's, runs seconds apart; requests/s, p99, CPU: medians)")
    return 0


def start_baseline(directory: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """``cvault serve store`` from the checkout in ``directory``; refuses if it would import this checkout's code."""
    base_env = {**env, "PYTHONPATH": str(directory), "CVAULT_STORE_LISTEN": f"127.0.0.1:{port}"}
    found = subprocess.run(
        [sys.executable, "-c", "import vault; print(vault.__file__)"],
        env=base_env,
        cwd=directory,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(directory.resolve()):
        raise SystemExit(f"--baseline {directory}: its interpreter imports vault from {found}, not from there")
    return subprocess.Popen([sys.executable, "-m", "vault.cli", "serve", "store"], env=base_env, cwd=directory)


def report_baseline(
    store_runs: list[dict[str, float]], base_runs: list[dict[str, float]], bare_runs: list[dict[str, float]]
) -> None:
    """Each store's ratio to the bare handler, round by round, and this checkout's difference in points."""

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    ours = [s["rps"] / b["rps"] for s, b in zip(store_runs, bare_runs, strict=True)]
    theirs = [s["rps"] / b["rps"] for s, b in zip(base_runs, bare_runs, strict=True)]
    points = [(o - t) * 100 for o, t in zip(ours, theirs, strict=True)]
    print("\nthis checkout vs --baseline (requests/s, ratio to bare; difference in points):")
    print(f"  {'':4}{'this':>8}{'baseline':>10}{'bare':>8}{'this':>9}{'baseline':>10}{'points':>9}")
    for i, (s, t, b) in enumerate(zip(store_runs, base_runs, bare_runs, strict=True)):
        print(
            f"  {i + 1:>2}: {s['rps']:>7.0f}{t['rps']:>10.0f}{b['rps']:>8.0f}"
            f"{ours[i]:>9.1%}{theirs[i]:>10.1%}{points[i]:>+9.1f}"
        )
    cpu = median([r["cpu_us"] for r in store_runs]), median([r["cpu_us"] for r in base_runs])
    print(
        f"median ratio: this checkout {median(ours):.1%}, baseline {median(theirs):.1%}; "
        f"difference {median(points):+.1f} points (median of the rounds' differences; "
        f"range {min(points):+.1f} to {max(points):+.1f})"
    )
    print(f"store CPU per read (median): this checkout {cpu[0]:.0f} us, baseline {cpu[1]:.0f} us")


def _worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of worker counts, like 1,2") from None
    if not counts or any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError("worker counts are 1 or more")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="alternate store and bare runs this many times; each round's ratio compares two runs "
        "made seconds apart, and the median round is reported (a shared machine is noisy)",
    )
    parser.add_argument(
        "--socket-dir",
        metavar="DIR",
        help="connect the store to PostgreSQL over its Unix socket in DIR (e.g. /var/run/postgresql) instead of TCP",
    )
    parser.add_argument(
        "--deployment",
        action="store_true",
        help="instead of the bare handler, compare the store as deployed: plain (baseline), with metrics on "
        "(metrics_token), with TLS, and with both; same database, same token, rounds interleaved",
    )
    parser.add_argument(
        "--workers",
        type=_worker_counts,
        metavar="N,M",
        help="serve the store once per worker count (cvault serve store --workers N) and compare each with the "
        "bare handler and with the first count; rounds interleaved",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        type=Path,
        help="also serve the store from the checkout in DIR (PYTHONPATH=DIR) on the same database and token, "
        "rounds interleaved, and print both ratios to the bare handler and their difference in points",
    )
    parser.add_argument(
        "--vault-api",
        action="store_true",
        help="read the secret through the Vault-compatible API (GET /vault/v1/<slug>/<vault>/data/<name>) instead",
    )
    args = parser.parse_args()
    admin = os.environ.get("CVAULT_TEST_DATABASE_URL")
    if not admin or not shutil.which("wrk"):
        raise SystemExit("needs CVAULT_TEST_DATABASE_URL and wrk on the PATH (apt-get install wrk)")

    name = f"cvault_bench_{os.getpid()}"
    dsn = asyncio.run(make_database(admin, name))
    store_port = free_port()
    store_url = f"http://127.0.0.1:{store_port}"
    # --deployment: every variant publishes the same https URL (the tokens' location); the plain
    # ones serve HTTP on loopback behind it, as behind a TLS-terminating proxy.
    published = f"https://127.0.0.1:{store_port}" if args.deployment else store_url
    authority = Authority("http://127.0.0.1:1")  # never called: the store only needs its key and location
    store_dsn = dsn if not args.socket_dir else dsn.split("@", 1)[0] + f"@/{name}?host={args.socket_dir}"
    env = store_env(store_dsn, authority, published, store_port)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        store = subprocess.Popen([sys.executable, "-m", "vault.cli", "serve", "store"], env=env)
        procs.append(store)
        wait_ready(store_url + "/readyz")

        # Enrol, create the vault, write the secret.
        _, challenge = http("GET", f"{store_url}/v1/orgs/{ORG}/enroll")
        status, enrolled = http(
            "POST",
            f"{store_url}/v1/orgs/{ORG}/enroll",
            authority.discharge(challenge["challenge"], ORG, 1),
            {"slug": "bench"},
        )
        assert status == 201, enrolled
        root = authority.discharge(enrolled["token"], ORG, 1)
        assert http("POST", f"{store_url}/v1/orgs/{ORG}/vaults", root, {"name": VAULT})[0] == 201
        assert (
            http("PUT", f"{store_url}/v1/orgs/{ORG}/vaults/{VAULT}/secrets/{SECRET}", root, {"value": VALUE})[0] == 200
        )

        # The workload's token: 5 caveats (Organization, 3P, Vaults, Secrets, ValidityWindow).
        now = int(time.time())
        token = decode_token(enrolled["token"]).attenuate(
            [Vaults(((VAULT, READ),)), Secrets(((SECRET + "$", READ),)), ValidityWindow(now, now + 3600)]
        )
        assert len(token.unverified_caveats) == 5
        bundle = authority.discharge(encode_token(token), ORG, 1)
        read_url = f"{store_url}/v1/orgs/{ORG}/vaults/{VAULT}/secrets/{SECRET}"
        if args.vault_api:
            read_url = f"{store_url}/vault/v1/bench/{VAULT}/data/{SECRET}"

        def value_of(reply: Any) -> Any:
            return reply["data"]["data"]["value"] if args.vault_api else reply["value"]

        status, reply = http("GET", read_url, bundle)
        assert status == 200 and value_of(reply) == VALUE, reply
        with urllib.request.urlopen(
            urllib.request.Request(read_url, headers={"Authorization": f"Bearer {bundle}"})
        ) as resp:
            body = resp.read()

        if args.deployment:
            return compare_deployments(args, env, procs, read_url, bundle)
        if args.workers:
            return compare_workers(args, env, procs, read_url, bundle, body)

        baseline: subprocess.Popen[bytes] | None = None
        base_url = ""
        if args.baseline is not None:
            base_port = free_port()
            baseline = start_baseline(args.baseline, env, base_port)
            procs.append(baseline)
            wait_ready(f"http://127.0.0.1:{base_port}/readyz")
            base_url = read_url.replace(store_url, f"http://127.0.0.1:{base_port}")
            status, reply = http("GET", base_url, bundle)
            assert status == 200 and value_of(reply) == VALUE, reply
        bare, bare_url = start_bare(body, procs)

        store_runs: list[dict[str, float]] = []
        base_runs: list[dict[str, float]] = []
        bare_runs: list[dict[str, float]] = []
        audited = 0

        def store_run(url: str, pid: int, into: list[dict[str, float]]) -> None:
            nonlocal audited
            before = asyncio.run(count_reads(dsn))
            cpu, pg_cpu = cpu_seconds(pid), postgres_cpu_seconds()
            run = wrk(url, {"Authorization": f"Bearer {bundle}"}, args.duration, args.connections, args.threads)
            run["cpu_us"] = (cpu_seconds(pid) - cpu) / run["requests"] * 1e6
            run["pg_cpu_us"] = (postgres_cpu_seconds() - pg_cpu) / run["requests"] * 1e6
            into.append(run)
            audited += asyncio.run(count_reads(dsn)) - before

        def bare_run() -> None:
            cpu = cpu_seconds(bare.pid)
            run = wrk(bare_url, {}, args.duration, args.connections, args.threads)
            run["cpu_us"] = (cpu_seconds(bare.pid) - cpu) / run["requests"] * 1e6
            bare_runs.append(run)

        steps = [lambda: store_run(read_url, store.pid, store_runs), bare_run]
        if baseline is not None:
            pid = baseline.pid
            steps.insert(1, lambda: store_run(base_url, pid, base_runs))
        for i in range(args.rounds):
            # Each round starts with the next step, so no store always runs first (or right after the bare one).
            for step in steps[i % len(steps) :] + steps[: i % len(steps)]:
                step()
    finally:
        stop(procs)
        asyncio.run(drop_database(admin, name))

    ratios = [s["rps"] / b["rps"] for s, b in zip(store_runs, bare_runs, strict=True)]
    middle = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
    store_result, bare_result = store_runs[middle], bare_runs[middle]
    print("rounds (store / bare requests/s, ratio):")
    for i, (s, b) in enumerate(zip(store_runs, bare_runs, strict=True)):
        mark = "  <- median" if i == middle else ""
        print(f"  {i + 1}: {s['rps']:7.0f} / {b['rps']:7.0f}  {s['rps'] / b['rps']:6.1%}{mark}")
    print(
        f"\nsecret read vs bare aiohttp handler ({len(body)}-byte JSON body, {args.connections} connections, "
        f"{args.duration} s each, wrk -t{args.threads}, {os.cpu_count()} CPUs shared with PostgreSQL, "
        f"store to PostgreSQL over {'Unix socket' if args.socket_dir else 'TCP'})"
    )
    print(f"{'':14}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'CPU us/req':>12}")
    for label, r in (("store read", store_result), ("bare handler", bare_result)):
        print(f"{label:14}{r['rps']:>12.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['cpu_us']:>12.0f}")
    print(f"PostgreSQL CPU per store read: {store_result['pg_cpu_us']:.0f} us (every server process on the machine)")
    ratio = ratios[middle]
    print(
        f"ratio (store / bare), median of {len(ratios)} rounds: {ratio:.1%} "
        f"(all rounds {min(ratios):.1%} to {max(ratios):.1%})   target >= 25%: {'met' if ratio >= 0.25 else 'NOT met'}"
    )
    counted = sum(r["requests"] for r in store_runs + base_runs)
    print(f"audited reads committed during the store runs: {audited} (wrk counted {counted:.0f} responses)")
    if base_runs:
        report_baseline(store_runs, base_runs, bare_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
