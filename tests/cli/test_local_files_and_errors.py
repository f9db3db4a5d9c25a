"""The CLI's local files and failures: temporary files never follow a planted symlink, a dead session is still
forgotten at logout, and an unexpected error is one sentence, not a traceback."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.authority_app import Client as AuthorityClient
from tests.support.cvault_command import cvault_env, run_cvault
from vault.cli.client_options import ClientSettings
from vault.cli.run import _write_fallback
from vault.client import Credentials
from vault.client.credentials import TokenBundle
from vault.client.session_file import SessionFile
from vault.macaroon import Macaroon


def _plant(target: Path) -> Path:
    victim = target.parent / "victim"
    victim.write_text("precious")
    (target.parent / f".{target.name}.{os.getpid()}").symlink_to(victim)
    return victim


def test_fallback_write_does_not_follow_a_planted_temp_symlink(tmp_path: Path) -> None:
    path = tmp_path / "fallback.bin"
    victim = _plant(path)
    token = TokenBundle(Macaroon.mint(b"kid", "http://s", os.urandom(32), []))
    settings = ClientSettings("http://a", "http://s", Credentials(token), SessionFile(tmp_path / "session.json"))
    _write_fallback(path, settings, "ctx", {"a": "b"})
    assert victim.read_text() == "precious"
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_session_save_does_not_follow_a_planted_temp_symlink(tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    victim = _plant(path)
    SessionFile(path).save({"session": "x"})
    assert victim.read_text() == "precious"
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_logout_with_a_dead_session_still_forgets_it(client: AuthorityClient, tmp_path: Path) -> None:
    # An expired or revoked session cannot be revoked again; refusing to delete it left
    # the operator with a file every command rejects and no way to clear it but rm.
    authority = str(client.make_url("")).rstrip("/")
    env = cvault_env({"XDG_CONFIG_HOME": str(tmp_path), "CVAULT_AUTHORITY_URL": authority})
    path = tmp_path / "cvault" / "session.json"
    SessionFile(path).save({"authority_url": authority, "session": "cvs_" + "A" * 43})
    status, out, err = await run_cvault("logout", env=env)
    assert (status, out.strip()) == (0, "logged out"), err
    assert not path.exists()


def test_an_unexpected_error_is_one_sentence_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vault.cli import main as cli_main
    from vault.cli import tokens

    def broken(args: object) -> int:
        raise KeyError("orgs")  # e.g. a server reply missing a field

    monkeypatch.setattr(tokens, "cmd_debug", broken)
    status = cli_main.main(["tokens", "debug", "cv1_x"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("cvault: unexpected KeyError") and "(internal)" in err
    assert "Traceback" not in err
