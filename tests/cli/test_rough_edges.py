"""The CLI's rough edges, each through the real ``cvault`` command against one ``cvault dev``."""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.cvault_command import cvault_command
from tests.support.dev_world import DevWorld, make_dev_world, run_cvault
from tests.support.mailbox import dev_mail_code
from vault.cli.main import build_parser


@pytest.fixture(scope="module")
def w(postgres_server: str, template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWorld]:
    yield from make_dev_world(postgres_server, template_database, tmp_path_factory)


def _no_internal(err: str) -> None:
    assert "unexpected" not in err and "(internal)" not in err and "Traceback" not in err, err


def test_versions_that_do_not_exist_are_not_reported_done(w: DevWorld) -> None:
    assert w.cvault("secrets", "set", "ver/x", "--vault", "prod", stdin="one").status == 0
    assert w.cvault("secrets", "set", "ver/x", "--vault", "prod", stdin="two").status == 0
    for kind in ("delete", "undelete", "destroy"):
        r = w.cvault("secrets", kind, "ver/x", "--vault", "prod", "--versions", "99")
        assert r.status == 4 and f"version(s) 99 of ver/x not {kind.replace('destroy', 'destroye')}d" in r.err, r
        assert r.out == ""
    r = w.cvault("secrets", "delete", "ver/x", "--vault", "prod", "--versions", "1,99", "--json")
    assert r.status == 0, r
    assert json.loads(r.out)["changed"] == [1] and json.loads(r.out)["requested"] == [1, 99]
    r = w.cvault("secrets", "undelete", "ver/x", "--vault", "prod", "--versions", "1,99")
    assert r.status == 0 and "version(s) 1 undeleted" in r.out and "99 not undeleted" in r.err, r


@pytest.mark.parametrize("name", ["has space", "per%cent", "a%2Fb"])
def test_names_with_spaces_or_percent_get_the_invalid_name_message(w: DevWorld, name: str) -> None:
    for args, stdin in ((("secrets", "get", name), None), (("secrets", "set", name), "v")):
        r = w.cvault(*args, "--vault", "prod", stdin=stdin)
        assert r.status == 2 and "is not a secret name" in r.err and "A-Z a-z 0-9" in r.err, r
        assert "not found" not in r.err.lower()


def test_login_without_a_terminal_says_which_flags_to_use(w: DevWorld) -> None:
    env = {**w.op, "XDG_CONFIG_HOME": str(w.tmp / "nologin")}
    r = run_cvault("login", env=env)  # stdin is /dev/null: no terminal
    assert r.status == 2 and "--email" in r.err, r
    _no_internal(r.err)
    r = run_cvault("login", "--email", "owner@cvault.dev", env=env)
    assert r.status == 2 and "--password-stdin" in r.err, r
    _no_internal(r.err)


def test_audit_query_json_into_a_closed_pipe_is_quiet(w: DevWorld) -> None:
    process = subprocess.Popen(
        cvault_command("audit", "query", "--json"),
        env=w.op,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `| head` that has already gone
    err = process.stderr.read()
    status = process.wait(60)
    assert status == 141, (status, err)
    assert err == ""


def test_audit_verify_of_a_missing_file_is_a_clear_error(w: DevWorld) -> None:
    r = w.cvault("audit", "verify", "--file", str(w.tmp / "missing.jsonl"))
    assert r.status == 1 and "missing.jsonl" in r.err and "No such file" in r.err, r
    _no_internal(r.err)


def test_audit_verify_exits_3_on_a_broken_chain_and_speaks_json(w: DevWorld) -> None:
    export = w.tmp / "audit.jsonl"
    ops = {**w.op, "CVAULT_DATABASE_URL": w.database_url}
    r = w.cvault("audit", "export", "--output", str(export), env=ops)
    assert r.status == 0, r
    lines = export.read_text().splitlines()
    assert len(lines) > 3
    r = w.cvault("audit", "verify", "--file", str(export), "--json")
    assert r.status == 0 and json.loads(r.out)["ok"] is True, r
    event = json.loads(lines[2])
    event["action"] = "secrets.tampered"
    lines[2] = json.dumps(event)
    export.write_text("\n".join(lines) + "\n")
    r = w.cvault("audit", "verify", "--file", str(export))
    assert r.status == 3 and "BROKEN" in r.out, r
    r = w.cvault("audit", "verify", "--file", str(export), "--json")
    assert r.status == 3 and json.loads(r.out)["ok"] is False


def test_errors_under_json_are_json_and_refusals_exit_4(w: DevWorld) -> None:
    r = w.cvault("secrets", "get", "no/such", "--vault", "prod", "--json")
    assert r.status == 4, r
    assert json.loads(r.out)["error"]["code"] == "not_found" and r.err == ""
    r = w.cvault("secrets", "set", "db/url", "--vault", "prod", "--json", env=w.wl, stdin="evil")
    assert r.status == 4 and json.loads(r.out)["error"]["code"] == "unauthorized", r
    r = w.cvault("secrets", "list", "--vault", "prod", "--json", env={**w.wl, "CVAULT_STORE_TOKEN": ""})
    assert r.status == 1 and json.loads(r.out)["error"]["code"] == "unauthenticated", r
    r = w.cvault("secrets", "delete", "db/url", "--versions", "x", "--json")
    assert r.status == 2 and json.loads(r.out)["error"]["code"] == "bad_request", r


def _leaves(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for name, child in subs[0].choices.items():
        yield from _leaves(child, [*path, name])


# Commands whose output is not a document: a child process, a server, a stream of JSON lines,
# a shell script, a bare token for VAULT_TOKEN.
_NO_JSON = {
    "run", "dev", "serve authority", "serve store", "serve rotator", "audit export", "bootstrap", "migrate",
    "completion", "vault-token", "audit console",
}  # fmt: skip


def test_every_command_takes_json() -> None:
    missing = [
        path
        for path, parser in _leaves(build_parser(full=True), [])
        if path not in _NO_JSON
        and not path.startswith("keys")
        and not any("--json" in a.option_strings for a in parser._actions)
    ]
    assert missing == []


def test_store_tokens_mint_without_ttl_gets_an_expiry(w: DevWorld) -> None:
    r = w.cvault("store", "tokens", "mint", "--mask", "r", "--vault", "prod", "--json")
    assert r.status == 0, r
    r = w.cvault("tokens", "debug", "--json", json.loads(r.out)["token"])
    windows = [v for d in json.loads(r.out) for v in d["validity"]]
    assert windows and 29 * 86400 < windows[0]["not_after"] - windows[0]["not_before"] <= 30 * 86400
    r = w.cvault("store", "tokens", "mint", "--mask", "r", "--ttl", "0", "--json")
    assert r.status == 0, r
    r = w.cvault("tokens", "debug", "--json", json.loads(r.out)["token"])
    assert [v for d in json.loads(r.out) for v in d["validity"]] == []


def test_audit_query_with_a_malformed_token_id_is_a_usage_error(w: DevWorld) -> None:
    r = w.cvault("audit", "query", "--token", "not-a-uuid")
    assert r.status == 2 and "--token takes a store token id" in r.err, r
    r = w.cvault("audit", "query", "--token", w.workload_store["id"], "--json")
    assert r.status == 0, r


def test_tokens_debug_names_each_kind(w: DevWorld) -> None:
    r = w.cvault("tokens", "debug", w.workload_store["token"])
    assert r.status == 0 and r.out.startswith("#1 store token"), r
    r = w.cvault("tokens", "debug", w.service["token"])
    assert r.status == 0 and r.out.startswith("#1 service token"), r
    r = w.cvault("tokens", "create", "--org", "dev", "--mask", "r", "--json")
    assert r.status == 0, r
    r = w.cvault("tokens", "debug", json.loads(r.out)["token"])
    assert r.status == 0 and r.out.startswith("#1 permission token"), r


def test_a_token_on_stdin_ignored_for_the_argument_is_said_so(w: DevWorld) -> None:
    r = w.cvault("tokens", "debug", w.service["token"], stdin=w.workload_store["token"])
    assert r.status == 0 and "ignoring the token on stdin" in r.err, r
    assert r.out.startswith("#1 service token")


def test_a_denied_request_is_audited_with_the_attested_actor_and_lineage(w: DevWorld) -> None:
    r = w.cvault("secrets", "set", "db/url", "--vault", "prod", env=w.wl, stdin="evil")
    assert r.status == 4 and "(unauthorized)" in r.err, r
    r = w.cvault("audit", "query", "--outcome", "denied", "--token", w.workload_store["id"], "--json")
    assert r.status == 0, r
    denied = [e for e in json.loads(r.out) if e["action"] == "secrets.write"]
    assert denied, r.out
    owner_id = json.loads((w.tmp / "operator" / "cvault" / "session.json").read_text())["user_id"]
    assert denied[-1]["actor"] == str(owner_id)
    assert denied[-1]["lineage"][:2] == [w.service["id"], w.service["parent"]]


def test_accepting_with_a_code_names_the_flag_the_password_needs(w: DevWorld) -> None:
    r = w.cvault("orgs", "invite", "dev", "bob@example.com", "--role", "reader", "--json")
    assert r.status == 0, r
    invitation = json.loads(r.out)
    r = w.cvault("orgs", "accept", invitation["id"], "--code", invitation["code"])
    assert r.status != 0 and "--password-stdin" in r.err, r
    accept = ("orgs", "accept", invitation["id"], "--code", invitation["code"], "--password-stdin")
    r = w.cvault(*accept, stdin="correct horse battery staple\n")
    # No account yet: the authority mails bob a verification code first (cvault dev: into its mail directory).
    assert r.status == 0 and "--verification" in r.err, r
    verification = dev_mail_code(w.data_dir / "mail", "bob@example.com")
    r = w.cvault(*accept, "--verification", verification, stdin="correct horse battery staple\n")
    assert r.status == 0 and "reader of dev" in r.out, r
