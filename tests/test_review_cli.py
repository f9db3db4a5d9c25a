"""Review findings on the CLI's files: temporary files must not follow a planted symlink."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vault.cli.client_options import ClientSettings
from vault.cli.run import _write_fallback
from vault.cli.session_file import SessionFile
from vault.client import Credentials
from vault.client.credentials import TokenBundle
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
