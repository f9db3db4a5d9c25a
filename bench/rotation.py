"""Managed rotation at scale: 1,000 PostgreSQL credentials due at once, with reads served meanwhile.

Usage::

    CVAULT_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        PYTHONPATH=$PWD python bench/rotation.py [--credentials 1000] [--rotators 2] [--concurrency 8]

What it does:

1. a scratch database for the store on that server; the store and the authority on real ports (in this process);
2. a PostgreSQL cluster of its own as the rotated target (``pg_hba``: SCRAM for every role but ``postgres``, so
   every test step is a real password check), with ``--credentials`` login roles and an admin role;
3. one secret per role (a connection URL) with a single-user policy, all made due at the same moment;
4. **baseline (reads)**: a workload reads the rotated secrets for ``--read-seconds`` with nothing else running;
5. **baseline (by hand)**: 100 further credentials rotated the way an operator's script would, through the same
   client and at the same concurrency: write pending, ``ALTER ROLE`` (the same SCRAM verifier), connect, promote;
6. **managed**: ``--rotators`` ``cvault serve rotator`` processes (each with its own rotator token and
   ``--concurrency``) rotate every due credential while the workload keeps reading; the bench polls the policies
   until every one has been rotated, then checks every rotated credential by connecting with it.

Prints rotations per second (managed and by hand, and their ratio), reads per second while rotating and their
ratio to the idle baseline, and failed reads (the acceptance figure: 0). The rotators and the services share this
the machine's cores (the store and the reader share this process), so the figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from tests.support.cvault_command import cvault_command, cvault_env
from tests.support.harness import running_services
from tests.support.rotation import PasswordCluster, password_cluster
from vault.client import Client, Credentials, TokenBundle
from vault.config import default_sql_dir
from vault.storage.database import create_database, drop_database, with_database
from vault.storage.migrations import migrate
from vault.storage.pool import close_pool, create_pool
from vault.storage.rotation_target import PostgresTarget
from vault.store.connection_document import ConnectionDocument, new_password

VAULT = "prod"
BY_HAND = 100


def doc(port: int, user: str, password: str) -> str:
    return ConnectionDocument("url", "127.0.0.1", port, "postgres", user, password, "disable").render()


async def reader(client: Client, names: list[str], stop: asyncio.Event, counts: dict[str, int]) -> None:
    while not stop.is_set():
        try:
            secret = await client.store.read_secret(VAULT, random.choice(names))
            ConnectionDocument.parse(secret.value)
            counts["ok"] += 1
        except Exception as exc:
            counts["failed"] += 1
            counts.setdefault(type(exc).__name__, 0)
            counts[type(exc).__name__] += 1


async def read_for(client: Client, names: list[str], seconds: float, readers: int) -> tuple[dict[str, int], float]:
    stop, counts = asyncio.Event(), {"ok": 0, "failed": 0}
    started = time.perf_counter()
    tasks = [asyncio.create_task(reader(client, names, stop, counts)) for _ in range(readers)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    return counts, time.perf_counter() - started


async def by_hand(owner: Client, pg: PasswordCluster, admin: ConnectionDocument, names: list[str], users: list[str],
                  concurrency: int) -> float:  # fmt: skip
    target, gate = PostgresTarget(), asyncio.Semaphore(concurrency)

    async def one(name: str, user: str) -> None:
        async with gate:
            password = new_password(32, os.urandom)
            new = ConnectionDocument.parse(doc(pg.port, user, password))
            await owner.store.write_secret(VAULT, name, new.render(), pending=True)
            await target.set_password(admin, user, password)
            await target.test(new)
            await owner.store.promote(VAULT, name)

    started = time.perf_counter()
    await asyncio.gather(*(one(n, u) for n, u in zip(names, users, strict=True)))
    elapsed = time.perf_counter() - started
    await target.close()
    return elapsed


async def main(args: argparse.Namespace) -> None:
    base = os.environ.get("CVAULT_TEST_DATABASE_URL")
    if not base:
        sys.exit("set CVAULT_TEST_DATABASE_URL (a role that may create databases)")
    name = f"cvault_bench_rot_{secrets.token_hex(4)}"
    await create_database(base, name)
    url = with_database(base, name)
    pool = await create_pool(url, max_size=1)
    await migrate(pool, sql_dir=default_sql_dir())
    await close_pool(pool)
    count, tag = args.credentials, secrets.token_hex(3)
    users = [f"rot_bench_{tag}_{i}" for i in range(count + BY_HAND)]
    names = [f"db/c{i}" for i in range(count)]
    hand_names = [f"hand/c{i}" for i in range(BY_HAND)]
    admin_user, admin_password = f"rot_bench_{tag}_admin", secrets.token_hex(12)
    try:
        with password_cluster() as pg:
            su = await pg.superuser()
            async with su.transaction():
                await su.execute(f"CREATE ROLE {admin_user} LOGIN CREATEROLE PASSWORD '{admin_password}'")
                for user in users:
                    await su.execute(f"CREATE ROLE {user} LOGIN PASSWORD 'initial-{user}'")
            await su.close()
            await run(args, url, pg, users, names, hand_names, admin_user, admin_password)
    finally:
        await drop_database(base, name)


async def run(args: argparse.Namespace, url: str, pg: PasswordCluster, users: list[str], names: list[str],
              hand_names: list[str], admin_user: str, admin_password: str) -> None:  # fmt: skip
    count = len(names)
    async with running_services(url, database_pool_size=args.pool) as h:
        owner_user = await h.new_user("owner@example.com")
        org = await h.create_org(owner_user, "bench")
        creds = Credentials(session=owner_user.session)
        async with Client(store_url=h.store_url, authority_url=h.authority_url, credentials=creds) as c:
            root = (await c.store.enroll(org, "bench")).token
        owner_creds = Credentials.from_text(store_token=root, session=owner_user.session)
        async with Client(store_url=h.store_url, authority_url=h.authority_url, credentials=owner_creds) as owner:
            await owner.store.create_vault(VAULT)
            admin = ConnectionDocument.parse(doc(pg.port, admin_user, admin_password))
            await owner.store.write_secret(VAULT, "db/admin", admin.render())
            gate = asyncio.Semaphore(16)

            async def prepare(name: str, user: str) -> None:
                async with gate:
                    await owner.store.write_secret(VAULT, name, doc(pg.port, user, f"initial-{user}"))
                    if name.startswith("db/"):
                        await owner.rotation.set_policy(
                            VAULT, name, target="postgres", every_seconds=30 * 86400, admin_secret="db/admin"
                        )

            print(f"preparing {count} credentials (+{BY_HAND} for the by-hand baseline)...", flush=True)
            await asyncio.gather(*(prepare(n, u) for n, u in zip(names + hand_names, users, strict=True)))
            permission = await owner.authority.create_token(org, mask="rw")
            service = (await owner.authority.strip(TokenBundle.parse(permission.token, what="permission"))).token
            read_token = (await owner.store.mint_token("r", vaults={VAULT: "r"}, secrets={"db/c": "r"})).token
            rotator_tokens = [await owner.rotation.rotator_token(VAULT, prefix="db/c") for _ in range(args.rotators)]

            def workload(store_token: str) -> Client:
                credentials = Credentials.from_text(store_token=store_token, authority_token=service)
                return Client(store_url=h.store_url, authority_url=h.authority_url, credentials=credentials)

            async with workload(read_token) as reads:
                idle, idle_seconds = await read_for(reads, names, args.read_seconds, args.readers)
                hand_seconds = await by_hand(owner, pg, admin, hand_names, users[count:], args.concurrency)

                for name in names:  # all due at the same moment
                    await owner.rotation.rotate_now(VAULT, name)
                stop, during = asyncio.Event(), {"ok": 0, "failed": 0}
                readers = [asyncio.create_task(reader(reads, names, stop, during)) for _ in range(args.readers)]
                logs = [Path(tempfile.mkdtemp()) / f"rotator-{i}.log" for i in range(args.rotators)]
                options = ["--vault", VAULT, "--interval", "0.2", "--batch", str(args.batch)]
                options += ["--concurrency", str(args.concurrency)]
                started = time.perf_counter()
                processes = [
                    subprocess.Popen(
                        cvault_command("serve", "rotator", *options, "--holder", f"bench-{i}"),
                        env=cvault_env(
                            {
                                "CVAULT_STORE_URL": h.store_url,
                                "CVAULT_AUTHORITY_URL": h.authority_url,
                                "CVAULT_STORE_TOKEN": token,
                                "CVAULT_AUTH_TOKEN": service,
                                "HOME": str(log.parent),
                            }
                        ),
                        stdout=log.open("wb"),
                        stderr=subprocess.STDOUT,
                    )
                    for i, (token, log) in enumerate(zip(rotator_tokens, logs, strict=True))
                ]
                try:
                    while True:
                        statuses = await owner.rotation.list_policies(VAULT)
                        if all(s.rotations >= 1 for s in statuses if s.name.startswith("db/")):
                            break
                        await asyncio.sleep(0.25)
                    managed_seconds = time.perf_counter() - started
                finally:
                    for process in processes:
                        process.send_signal(signal.SIGTERM)
                        process.wait(30)
                stop.set()
                await asyncio.gather(*readers)
                said = "".join(log.read_text() for log in logs)
                failed_rotations = said.count(" failed at ") + said.count(" stopped at ") + said.count(" abandoned at ")

            statuses = await owner.rotation.list_policies(VAULT)
            rotated_once = sum(1 for s in statuses if s.rotations == 1 and s.name.startswith("db/"))
            working = 0
            target = PostgresTarget()
            for name in names:
                current = ConnectionDocument.parse((await owner.store.read_secret(VAULT, name)).value)
                await target.test(current)
                working += 1
            await target.close()

    managed_rate, hand_rate = count / managed_seconds, BY_HAND / hand_seconds
    idle_rate, during_rate = idle["ok"] / idle_seconds, during["ok"] / managed_seconds
    print(f"managed rotation: {count} credentials due at once, {args.rotators} rotators x {args.concurrency}")
    managed = f"({count} in {managed_seconds:.1f} s, the rotators' start included)"
    print(f"  rotations/s               {managed_rate:8.1f}   {managed}")
    hand = f"({BY_HAND} in {hand_seconds:.1f} s, concurrency {args.concurrency})"
    print(f"  by hand (baseline)        {hand_rate:8.1f}   {hand}")
    print(f"  ratio managed / by hand   {managed_rate / hand_rate:8.2f}")
    print(f"  reads/s while rotating    {during_rate:8.1f}   ({during['ok']} reads, {during['failed']} failed)")
    print(f"  reads/s idle (baseline)   {idle_rate:8.1f}   ({idle['ok']} reads, {idle['failed']} failed)")
    print(f"  ratio reads rotating/idle {during_rate / idle_rate:8.2f}")
    print(f"  rotated exactly once      {rotated_once}/{count}; new credentials that connect: {working}/{count}")
    print(f"  failed or abandoned rotations: {failed_rotations}")
    if during["failed"] or idle["failed"] or rotated_once != count or working != count or failed_rotations:
        print(f"FAILURES: {during} {idle}")
        sys.exit(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--credentials", type=int, default=1000)
    parser.add_argument("--rotators", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8, help="rotations at once per rotator")
    parser.add_argument("--batch", type=int, default=25, help="rotations claimed per poll")
    parser.add_argument("--readers", type=int, default=4, help="concurrent reading tasks")
    parser.add_argument("--read-seconds", type=float, default=5.0)
    parser.add_argument("--pool", type=int, default=8, help="the services' database pool size")
    asyncio.run(main(parser.parse_args()))
