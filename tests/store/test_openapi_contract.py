"""Schemathesis, the real CLI with every check, over the store's generated OpenAPI document (issue 28 item 1).

The service serves its document at ``/openapi.json``, generated from the models its handlers decode and encode
(:mod:`vault.web.contract`); ``st run --checks all`` (tests/support/schemathesis.py) runs it against the live
services. The acceptance is no contract mismatch at all: no 5xx, every status, content type and body as
documented, data the document forbids refused with a 4xx and data it allows accepted, undeclared methods answered
405 with ``Allow``, a missing or ignored credential refused.

Two exceptions, both Vault's own replies to a valid request, which Vault clients expect exactly (docs/api.md):
Vault's ``auth/token/renew-self`` answers a live token with 400 ``lease is not renewable`` (a bundle lives as long as
its discharge; hvac, the Vault Agent and OpenBao itself expect that reply, tests/vault_api/test_sys_hvac.py), and a
KV data write without ``options.cas`` to a secret whose metadata requires check-and-set (an earlier case may have
set ``cas_required``) is 400 ``check-and-set parameter required for this call``. So those operations' accepted
statuses include 400 (and only that: every other check still runs on them).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.enrolled_org import EnrolledOrg, world
from tests.support.harness import harness
from tests.support.schemathesis import run_schemathesis, schemathesis_config

__all__ = ["harness", "world"]

# Operations whose valid requests are answered with a 4xx by design (the docstring says why), and which statuses.
_WITH_400 = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
ACCEPTED_STATUSES = {
    f"{method} {path}": _WITH_400
    for method in ("POST", "PUT")
    for path in (
        "/vault/v1/auth/token/renew-self",
        "/vault/v1/{vault}/data/{path}",
        "/vault/v1/{slug}/{vault}/data/{path}",
    )
}


async def test_the_store_document_holds_against_the_store(world: EnrolledOrg, tmp_path: Path) -> None:
    h = world.h
    spec = (await h.store("GET", "/openapi.json")).body
    # The world's org and vault on every operation that names them: a random org stops every case at 404, before
    # the operation's own rules are exercised. Names, bodies and queries stay generated.
    config = schemathesis_config(
        {"Authorization": f"Bearer {world.bundle}"},
        parameters={"path.org": world.org, "path.vault": "prod"},
        operations={
            label: {"checks": {"positive_data_acceptance": {"expected-statuses": statuses}}}
            for label, statuses in ACCEPTED_STATUSES.items()
        },
    )
    status, report = await asyncio.to_thread(run_schemathesis, tmp_path, spec, h.store_url, config)
    assert status == 0, report
