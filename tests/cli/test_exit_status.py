"""One exit-status rule for "not found" and "refused", over every ``cvault`` command (docs/client.md).

Exit status 4 means refused or not found, whichever side noticed: a service's error
reply, or a "not found" / "refused" / "conflict" cvault concludes from what a service
(or, for the database-backed admin commands, the database) answered. Every command
of the full parser is either in :data:`CASES` (run here against one ``cvault dev``)
or in :data:`NOTHING_TO_REFUSE` with the reason, so a new command fails
:func:`test_every_command_is_covered` until it is given a case.

The same module checks the other small promises of the command line: ``orgs
remove-member`` / ``set-role`` take an email or an id, the first join is one
command, a typo'd flag prints its subcommand's usage, a second revoke says so.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Iterator

import pytest

from tests.support.dev_world import DevWorld, make_dev_world
from tests.support.mailbox import dev_mail_code
from vault.cli.main import build_parser

MISSING = str(uuid.uuid4())

# Which environment a case runs in: the operator (session + root store token), the workload,
# the workload with a revoked service token, a dead session, or the operator with the database.
CASES: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "login": ("op", ("login", "--email", "owner@cvault.dev", "--password-stdin"), "not-the-password\n"),
    "orgs list": ("dead", ("orgs", "list"), None),
    "orgs create": ("op", ("orgs", "create", "dev"), None),
    "orgs members": ("op", ("orgs", "members", "no-such-org"), None),
    "orgs invite": ("op", ("orgs", "invite", "no-such-org", "bob@example.com", "--role", "reader"), None),
    "orgs invitations": ("dead", ("orgs", "invitations"), None),
    "orgs accept": ("op", ("orgs", "accept", MISSING, "--code", "cvi_not-a-code"), None),
    "orgs set-role": ("op", ("orgs", "set-role", "dev", "nobody@example.com", "reader"), None),
    "orgs remove-member": ("op", ("orgs", "remove-member", "dev", "nobody@example.com"), None),
    "secrets set": ("wl", ("secrets", "set", "db/url", "--vault", "prod"), "v"),
    "secrets get": ("op", ("secrets", "get", "no/such", "--vault", "prod"), None),
    "secrets list": ("op", ("secrets", "list", "--vault", "no-such-vault"), None),
    "secrets versions": ("op", ("secrets", "versions", "no/such", "--vault", "prod"), None),
    "secrets delete": ("op", ("secrets", "delete", "db/url", "--vault", "prod", "--versions", "99"), None),
    "secrets undelete": ("op", ("secrets", "undelete", "db/url", "--vault", "prod", "--versions", "99"), None),
    "secrets destroy": ("op", ("secrets", "destroy", "db/url", "--vault", "prod", "--versions", "99"), None),
    "secrets rotate": ("op", ("secrets", "rotate", "no/such", "--vault", "prod", "--promote"), None),
    "vaults list": ("revoked", ("vaults", "list"), None),
    "vaults create": ("op", ("vaults", "create", "prod"), None),
    "vaults delete": ("op", ("vaults", "delete", "no-such-vault"), None),
    "store enroll": ("op", ("store", "enroll", "no-such-org"), None),
    "store tokens mint": ("wl", ("store", "tokens", "mint", "--mask", "r", "--vault", "prod"), None),
    "store tokens revoke": ("op", ("store", "tokens", "revoke", MISSING), None),
    "tokens create": ("op", ("tokens", "create", "--org", "no-such-org"), None),
    "tokens strip": ("op", ("tokens", "strip"), "service"),  # a service token is no permission token
    "tokens revoke": ("op", ("tokens", "revoke", MISSING), None),
    "tokens list": ("dead", ("tokens", "list"), None),
    "run": ("wl", ("run", "--vault", "prod", "--only", "no/such", "--", "true"), None),
    "audit query": ("wl", ("audit", "query", "--secret", "db/url"), None),
    "audit verify": ("wl", ("audit", "verify"), None),  # through the store's API: the workload lacks 'a'
    "audit export": ("wl", ("audit", "export"), None),
    "workloads issuers add": ("op", ("workloads", "issuers", "add", "no-such-org", "https://issuer.example"), None),
    "workloads issuers list": ("dead", ("workloads", "issuers", "list", "dev"), None),
    "workloads issuers remove": ("op", ("workloads", "issuers", "remove", "dev", "https://issuer.example"), None),
    "workloads bind": (
        "op",
        ("workloads", "bind", "dev", "deploy", "--issuer", "https://issuer.example", "--claim", "sub=x", "--mask", "r"),
        None,
    ),
    "workloads list": ("op", ("workloads", "list", "no-such-org"), None),
    "workloads show": ("op", ("workloads", "show", "dev", "no-such-binding"), None),
    "workloads unbind": ("op", ("workloads", "unbind", "dev", "no-such-binding"), None),
    "rotation set": (
        "op",
        ("rotation", "set", "no/such", "--vault", "prod", "--command", "rotate-api-key", "--every", "30d"),
        None,
    ),
    "rotation show": ("op", ("rotation", "show", "db/url", "--vault", "prod"), None),  # a secret without a policy
    "rotation list": ("wl", ("rotation", "list", "--vault", "staging"), None),  # a vault beyond its token's
    "rotation disable": ("op", ("rotation", "disable", "no/such", "--vault", "prod"), None),
    "rotation now": ("op", ("rotation", "now", "db/url", "--vault", "prod"), None),
    "rotation status": ("op", ("rotation", "status", "no/such", "--vault", "prod"), None),
    "rotation token": ("wl", ("rotation", "token", "db/url", "--vault", "prod"), None),  # db/url has no policy
    "vault-token": ("revoked", ("vault-token",), None),
    "bootstrap": (
        "db",
        ("bootstrap", "--email", "owner@cvault.dev", "--org", "dev", "--password-stdin"),
        "another-password",
    ),
    "keys retire-tokens": ("db", ("keys", "retire-tokens", "7ffffffffffffff1"), None),
    "keys retire-tickets": ("db", ("keys", "retire-tickets", "7ffffffffffffff1", "--yes"), None),
}

NOTHING_TO_REFUSE = {
    "logout": "forgets a session the authority no longer accepts, on purpose (exit 0)",
    "tokens debug": "offline: a corrupt paste is a local error (1)",
    "tokens attenuate": "offline: a corrupt paste is a local error (1)",
    "audit console": "a local web server; its pages are the store's audit queries",
    "dev": "starts the services",
    "serve authority": "starts a service",
    "serve store": "starts a service",
    "serve rotator": "starts a service",
    "migrate": "applies migrations; names nothing",
    "keys rotate": "names no key: rotates the current one",
    "keys rotate-master": "names no key: rotates the current one",
    "keys rotate-tokens": "names no key: rotates the current one",
    "keys rotate-tickets": "names no key: rotates the current one",
    "keys status": "lists every key; names none",
    "completion": "prints a script; no service",
}


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(prefix)
    for action in subs:
        for name, child in action.choices.items():
            yield from _commands(child, (*prefix, name))


def test_every_command_is_covered() -> None:
    every = set(_commands(build_parser(full=True)))
    assert every == set(CASES) | set(NOTHING_TO_REFUSE), (every - set(CASES) - set(NOTHING_TO_REFUSE)) or (
        (set(CASES) | set(NOTHING_TO_REFUSE)) - every
    )


@pytest.fixture(scope="module")
def w(postgres_server: str, template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWorld]:
    yield from make_dev_world(postgres_server, template_database, tmp_path_factory)


@pytest.fixture(scope="module")
def envs(w: DevWorld) -> dict[str, dict[str, str]]:
    r = w.cvault("tokens", "create", "--org", "dev", "--mask", "r", "--service", "--json")
    assert r.status == 0, r
    revoked = json.loads(r.out)
    assert w.cvault("tokens", "revoke", revoked["id"]).status == 0
    db = {k: w.exports[k] for k in ("CVAULT_DATABASE_URL", "CVAULT_MASTER_KEY_FILE") if k in w.exports}
    return {
        "op": w.op,
        "wl": w.wl,
        "revoked": {**w.wl, "CVAULT_AUTH_TOKEN": revoked["token"]},
        "dead": {**w.op, "CVAULT_SESSION": "cvs_" + "x" * 43},
        "db": {**w.op, "CVAULT_DATABASE_URL": w.database_url, **db},
    }


@pytest.mark.parametrize("command", sorted(CASES))
def test_not_found_and_refused_exit_4(w: DevWorld, envs: dict[str, dict[str, str]], command: str) -> None:
    env, args, stdin = CASES[command]
    if stdin == "service":
        stdin = w.service["token"]
    r = w.cvault(*args, env=envs[env], stdin=stdin)
    assert r.status == 4, r
    assert r.err.startswith("cvault: ") and r.err.rstrip().endswith(")") and "Traceback" not in r.err, r
    r = w.cvault(*args, "--json", env=envs[env], stdin=stdin) if "--json" in _flags(command) else None
    if r is not None:
        assert r.status == 4 and json.loads(r.out)["error"]["code"], r


def _flags(command: str) -> set[str]:
    parser = build_parser(full=True)
    for word in command.split():
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return {s for a in parser._actions for s in a.option_strings}


def test_members_are_named_by_email_or_id(w: DevWorld) -> None:
    r = w.cvault("orgs", "invite", "dev", "carol@example.com", "--role", "reader", "--json")
    assert r.status == 0, r
    invitation = json.loads(r.out)
    home = w.tmp / "carol"
    carol = {**w.op, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "cfg")}
    carol.pop("CVAULT_STORE_TOKEN")
    accept = (
        "orgs", "accept", invitation["id"], "--code", invitation["code"], "--email", "carol@example.com",
        "--password-stdin",
    )  # fmt: skip
    # No account yet: the authority mails carol a verification code first (cvault dev: into its mail directory).
    r = w.cvault(*accept, env=carol, stdin="carol-long-password-1\n")
    assert r.status == 0 and "--verification" in r.err, r
    verification = dev_mail_code(w.data_dir / "mail", "carol@example.com")
    # Then the first join is one command: accept (creating the account), log in, save the session.
    r = w.cvault(*accept, "--verification", verification, env=carol, stdin="carol-long-password-1\n")
    assert r.status == 0 and "reader of dev" in r.out and "logged in as carol@example.com" in r.out, r
    assert (home / "cfg" / "cvault" / "session.json").exists()
    r = w.cvault("orgs", "list", "--json", env=carol)
    assert r.status == 0 and [o["slug"] for o in json.loads(r.out)] == ["dev"], r

    members = {m["email"]: m for m in json.loads(w.cvault("orgs", "members", "dev", "--json").out)}
    user_id = str(members["carol@example.com"]["user_id"])
    r = w.cvault("orgs", "set-role", "dev", "carol@example.com", "auditor")
    assert r.status == 0 and "carol@example.com" in r.out, r
    r = w.cvault("orgs", "set-role", "dev", user_id, "reader")
    assert r.status == 0, r
    r = w.cvault("orgs", "remove-member", "dev", "Carol@Example.com")
    assert r.status == 0 and f"(user {user_id}) removed from dev" in r.out, r
    r = w.cvault("orgs", "remove-member", "dev", user_id)
    assert r.status == 4 and "is not a member of dev" in r.err, r


def test_a_typo_in_a_subcommand_flag_prints_that_subcommands_usage(w: DevWorld) -> None:
    r = w.cvault("secrets", "set", "db/url", "--vualt", "prod", stdin="x")
    assert r.status == 2
    assert r.err.startswith("usage: cvault secrets set ") and "unrecognized arguments: --vualt prod" in r.err, r
    r = w.cvault("tokens", "create", "--org", "dev", "--tll", "3")
    assert r.status == 2 and r.err.startswith("usage: cvault tokens create "), r


def test_revoking_a_revoked_token_says_so(w: DevWorld) -> None:
    r = w.cvault("tokens", "create", "--org", "dev", "--mask", "r", "--service", "--json")
    token_id = json.loads(r.out)["id"]
    r = w.cvault("tokens", "revoke", token_id)
    assert r.status == 0 and "revoked 1 token(s)" in r.out, r
    r = w.cvault("tokens", "revoke", token_id)
    assert r.status == 0 and "already revoked" in r.out and "revoked 1" not in r.out, r
