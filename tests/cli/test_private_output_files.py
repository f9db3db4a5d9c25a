"""Files cvault writes that hold secrets or audit records are readable by their owner only (mode 0600)."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path

import pytest

from tests.support.cvault_command import cvault_env, run_cvault
from vault.cli.output import open_private
from vault.cli.store import print_token
from vault.client.environment import load_settings
from vault.client.models import MintedToken


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_open_private_makes_and_narrows_files(tmp_path: Path) -> None:
    new, old = tmp_path / "new", tmp_path / "old"
    old.write_text("was world-readable")
    old.chmod(0o644)
    for path in (new, old):
        with open_private(path) as handle:
            handle.write("token\n")
        assert _mode(path) == 0o600
        assert path.read_text() == "token\n"


async def test_audit_export_writes_a_private_file(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    out.write_text("")
    out.chmod(0o644)
    status, _, err = await run_cvault(
        "audit", "export", "--schema", "store", "-o", str(out), env=cvault_env({"CVAULT_DATABASE_URL": database_url})
    )
    assert status == 0, err
    assert _mode(out) == 0o600


def test_a_client_does_not_read_the_services_settings(tmp_path: Path) -> None:
    """`cvault dev`'s operator exports in the shell (a key file, a database URL) are not the client's business."""
    env = {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CVAULT_MASTER_KEY_FILE": "relative/to/somewhere/else/master.key",
        "CVAULT_DATABASE_URL": "not a url",
        "CVAULT_LOG_LEVEL": "LOUD",
        "CVAULT_STORE_URL": "https://store.example:8202",
    }
    settings = load_settings(env)
    assert settings.store_url == "https://store.example:8202"


def test_a_token_asked_for_as_json_goes_to_the_output_file_not_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "workload.json"
    reply = MintedToken(token="FlyV1 fm2_secret-token-body", id="tok-1")
    print_token(reply, argparse.Namespace(json=True, output=out), "a store token")
    assert "fm2_secret-token-body" not in capsys.readouterr().out
    assert json.loads(out.read_text())["token"] == reply.token
    assert _mode(out) == 0o600
