"""``cvault vault-token``: a store bundle for Vault clients, printed once or kept fresh in a file.

The bundle is the store token narrowed to the Vault API's operations (and to
``--vault`` when given), with a freshly fetched org discharge bound to it. It
lives as long as that discharge (the authority's ``org_discharge_ttl``, five
minutes by default), and nothing can renew it: ``--sink FILE`` is the answer,
a small long-running helper that rewrites FILE with a new bundle at half of
each bundle's lifetime, once the store's ``lookup-self`` accepts it — written to a temporary file in the same directory,
fsynced, renamed over FILE (mode 0600) — so Vault Agent's ``token_file``,
consul-template's ``vault_agent_token_file`` and External Secrets Operator's
token secret always find a live one (docs/vault-compat.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any

from vault.errors import BadRequest, Unauthorized, Unavailable, VaultError

from .client_options import add_client_options, client_settings, make_client
from .output import replace_private

__all__ = ["VAULT_OPERATIONS", "bundle_expiry", "register", "write_atomically"]

VAULT_OPERATIONS = (
    "secrets.read",
    "secrets.write",
    "secrets.list",
    "secrets.metadata",
    "secrets.metadata_write",
    "secrets.delete",
    "secrets.undelete",
    "secrets.destroy",
    "vaults.list",
    "vaults.config",
    "vaults.configure",
    "tokens.lookup",
    "tokens.renew",
)
"""Every operation the Vault API (``<store>/vault``) performs; the bundle allows these only."""

MIN_WAIT = 1.0
RETRY_WAIT = 2.0
# The narrowed token's own window; the org discharge (minutes) normally ends first.
TOKEN_WINDOW = 3600


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "vault-token",
        help="print a bundle for Vault clients (VAULT_TOKEN), or keep a file holding a fresh one",
        description=(
            "Print a store bundle narrowed to the Vault API, for VAULT_TOKEN (it lives as long as its org "
            "discharge, 5 minutes by default). With --sink FILE, keep running and rewrite FILE atomically "
            "with a fresh bundle at half of each one's lifetime, for Vault Agent (token_file), consul-template "
            "(vault_agent_token_file) or External Secrets Operator. Credentials: CVAULT_STORE_TOKEN and "
            "CVAULT_AUTH_TOKEN (or their _FILE variants, or a `cvault login` session)."
        ),
    )
    parser.add_argument(
        "--vault", action="append", metavar="NAME", help="confine the bundle to this vault (repeatable)"
    )
    parser.add_argument(
        "--sink", type=Path, metavar="FILE", help="keep FILE holding a fresh bundle (runs until stopped)"
    )
    add_client_options(parser, json_flag=False)
    parser.set_defaults(func=run)


def bundle_expiry(bundle: str) -> int:
    """The end of the narrowest validity window among the bundle's tokens and discharges."""
    from vault.macaroon import parse_bundle
    from vault.macaroon.caveats import ValidityWindow

    parsed = parse_bundle(bundle)
    ends = [c.not_after for m in parsed.tokens for c in m.unverified_caveats if isinstance(c, ValidityWindow)]
    if not ends:
        raise BadRequest("the bundle has no validity window")
    return min(ends)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a temporary file beside it (mode 0600, never through a symlink),
    fsynced, renamed over it, and the directory fsynced, so a reader sees the old bundle or the new one."""
    replace_private(path, (text + "\n").encode("ascii"), what="the sink file", durable=True)


def _narrowing(vaults: list[str] | None) -> list[Any]:
    from vault.macaroon.access import ALL
    from vault.macaroon.caveats import Operations, Vaults
    from vault.names import check_vault_name

    caveats: list[Any] = [Operations(VAULT_OPERATIONS)]
    if vaults:
        caveats.append(Vaults(tuple((check_vault_name(v), ALL) for v in sorted(set(vaults)))))
    return caveats


def _say(message: str) -> None:
    print(f"cvault vault-token: {message}", file=sys.stderr, flush=True)


def _when(unix: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


async def _fresh_bundle(client: Any, caveats: list[Any]) -> str:
    """A new bundle, checked with the store's Vault API (lookup-self): the authority discharges a store
    token the store has revoked, so only the store can say the bundle works."""
    bundle: str = await client.store_bundle(caveats)
    try:
        await client.http.request(
            "GET", client.store_url + "/vault/v1/auth/token/lookup-self", authorization=f"Bearer {bundle}"
        )
    except VaultError as exc:
        if exc.status in (401, 403):
            raise Unauthorized(
                "the store refuses the bundle: the store token is revoked or not this store's "
                "(CVAULT_STORE_TOKEN, CVAULT_STORE_URL); nothing was written"
            ) from None
        raise
    return bundle


async def _sink(client: Any, caveats: list[Any], path: Path, stop: asyncio.Event) -> None:
    expires: int | None = None  # of the bundle in the file
    while not stop.is_set():
        try:
            bundle = await _fresh_bundle(client, caveats)
            new_expiry = bundle_expiry(bundle)
            write_atomically(path, bundle)
            expires = new_expiry
            _say(f"wrote {path} (valid until {_when(expires)})")
            wait = max(MIN_WAIT, (expires - time.time()) / 2)
        except Unavailable as exc:
            # The file keeps the previous bundle while it lasts; try again soon.
            left = (expires - time.time()) if expires is not None else 0.0
            _say(f"could not refresh the bundle ({exc.message}); {max(0, int(left))} s left on {path}, retrying")
            wait = RETRY_WAIT
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)


def run(args: argparse.Namespace) -> int:
    settings = client_settings(args)
    caveats = _narrowing(args.vault)

    async def go() -> int:
        # The discharge cache is bypassed (an infinite margin): each bundle gets a fresh
        # discharge, so a sink's rewrite really extends the file's lifetime.
        async with make_client(settings, window=TOKEN_WINDOW, discharge_margin=float("inf")) as client:
            if args.sink is None:
                bundle = await _fresh_bundle(client, caveats)
                expiry = bundle_expiry(bundle)
                print(bundle)
                _say(
                    f"a Vault token for org {client.store_org()}, valid until {_when(expiry)} "
                    f"({expiry - int(time.time())} s); use --sink FILE to keep one fresh"
                )
                return 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await _sink(client, caveats, args.sink, stop)
            return 0

    return asyncio.run(go())
