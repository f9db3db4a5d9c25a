"""``cvault tokens debug`` and ``cvault tokens attenuate``, run as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.support.tokenkit import Setup
from vault.macaroon import caveats as cv
from vault.macaroon import encode_bundle, parse_bundle, verify
from vault.macaroon.access import READ


def cvault(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "vault.cli", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def _bundle() -> tuple[Setup, str]:
    s = Setup()
    token = s.token()
    now = int(time.time())
    d = s.discharge(token, window=(now - 5, now + 600))
    return s, encode_bundle([token, d])


def test_debug_shows_discharge_time_left() -> None:
    _, bundle = _bundle()
    out = cvault("tokens", "debug", bundle)
    assert out.returncode == 0, out.stderr
    assert "discharge token" in out.stdout and "store token" in out.stdout  # its 3P is the authority's /org
    assert "expires in 9 minutes" in out.stdout or "expires in 10 minutes" in out.stdout


def test_debug_json_lists_each_macaroon() -> None:
    _, bundle = _bundle()
    out = cvault("tokens", "debug", "--json", "--token", bundle)
    data = json.loads(out.stdout)
    assert [d["kind"] for d in data] == ["store", "discharge"]
    assert data[0]["third_party"] == ["https://auth.test/org"]
    assert data[1]["validity"][0]["status"].startswith("expires in")


def test_debug_on_truncated_token_says_truncated_not_unauthorized() -> None:
    _, bundle = _bundle()
    out = cvault("tokens", "debug", bundle[: len(bundle) // 3])
    assert out.returncode == 1
    assert "truncated or corrupt" in out.stderr and "unauthorized" not in out.stderr.lower()


def test_debug_reads_env_and_stdin_and_says_which_source_it_used() -> None:
    _, bundle = _bundle()
    assert cvault("tokens", "debug", stdin=bundle).returncode == 0
    out = cvault("tokens", "debug", bundle, env={"CVAULT_TOKEN": "cv1_other"})
    assert out.returncode == 0
    assert "using the token from the TOKEN argument; ignoring $CVAULT_TOKEN" in out.stderr
    both = cvault("tokens", "debug", bundle, "--token", bundle)
    assert both.returncode == 2 and "not both" in both.stderr
    none = cvault("tokens", "debug")
    assert none.returncode == 2 and "no token given" in none.stderr


def test_attenuate_appends_to_permission_tokens_and_passes_discharges() -> None:
    s, bundle = _bundle()
    caveats = json.dumps([{"type": "Vaults", "body": {"prod": "r"}}])
    out = cvault("tokens", "attenuate", bundle, stdin=caveats)
    assert out.returncode == 0, out.stderr
    new = parse_bundle(out.stdout.strip())
    old = parse_bundle(bundle)
    assert new.discharges[0].encode() == old.discharges[0].encode()
    token = new.permission_tokens[0]
    assert token.unverified_caveats[-1] == cv.Vaults((("prod", READ),))
    # The discharge, bound to the broader token, still verifies with the narrowed one.
    verify(token, s.root_key, new.discharges, now=int(time.time()))


def test_attenuate_rejects_bad_caveats_json_with_a_clear_message() -> None:
    _, bundle = _bundle()
    out = cvault("tokens", "attenuate", bundle, stdin='[{"type": "Nope", "body": 1}]')
    assert out.returncode == 2 and "unknown type 'Nope'" in out.stderr
    out = cvault("tokens", "attenuate", bundle, stdin="not json")
    assert out.returncode == 2 and "must be JSON" in out.stderr


def test_help_explains_commands() -> None:
    out = cvault("tokens", "debug", "--help")
    assert out.returncode == 0 and "CVAULT_TOKEN" in out.stdout
