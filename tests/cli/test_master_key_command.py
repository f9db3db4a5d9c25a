"""master_key_command: the master key from a command's standard output, tested with the real `age` from Debian."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.cvault_command import cvault_command, cvault_env, run_cvault
from vault.config import load_config, require_master_key
from vault.crypto.keyring import generate_key
from vault.errors import ConfigError


def _age_encrypted_key(tmp_path: Path) -> tuple[bytes, Path, Path]:
    """A master key encrypted with `age` to a fresh identity: (key, identity file, encrypted file)."""
    identity = tmp_path / "id.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    key = generate_key()
    encrypted = tmp_path / "master.key.age"
    subprocess.run(["age", "-r", recipient, "-o", str(encrypted)], input=base64.b64encode(key) + b"\n", check=True)
    return key, identity, encrypted


def test_age_decrypts_the_master_key(tmp_path: Path) -> None:
    key, identity, encrypted = _age_encrypted_key(tmp_path)
    assert base64.b64encode(key) not in encrypted.read_bytes()
    config = load_config({"CVAULT_MASTER_KEY_COMMAND": f"age -d -i {identity} {encrypted}"})
    assert config.master_key is None  # nothing runs until a service needs the key
    assert require_master_key(config) == key
    assert "age" in repr(config) and base64.b64encode(key).decode() not in repr(config)


def test_the_command_sees_no_key_in_argv_or_environment(tmp_path: Path) -> None:
    key, identity, encrypted = _age_encrypted_key(tmp_path)
    seen = tmp_path / "seen"
    # A wrapper that records its argv and environment, then runs age.
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(f'#!/bin/sh\n{{ echo "$0 $*"; env; }} > {seen}\nexec age -d -i {identity} {encrypted}\n')
    wrapper.chmod(0o700)
    other = base64.b64encode(generate_key()).decode()
    os.environ["CVAULT_MASTER_KEY_PREVIOUS"] = other
    try:
        assert require_master_key(load_config({"CVAULT_MASTER_KEY_COMMAND": str(wrapper)})) == key
    finally:
        del os.environ["CVAULT_MASTER_KEY_PREVIOUS"]
    recorded = seen.read_text()
    assert str(wrapper) in recorded
    assert other not in recorded and "CVAULT_MASTER_KEY" not in recorded
    assert base64.b64encode(key).decode() not in recorded


def test_failures_are_clear_and_quote_no_output(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    key, _identity, encrypted = _age_encrypted_key(tmp_path)
    wrong = tmp_path / "wrong.txt"
    subprocess.run(["age-keygen", "-o", str(wrong)], check=True, capture_output=True)
    with pytest.raises(ConfigError, match="exited with status 1") as failed:
        require_master_key(load_config({"CVAULT_MASTER_KEY_COMMAND": f"age -d -i {wrong} {encrypted}"}))
    assert "no identity matched" in capfd.readouterr().err  # age's own stderr passed through
    assert base64.b64encode(key).decode() not in str(failed.value)

    with pytest.raises(ConfigError, match="not found"):
        require_master_key(load_config({"CVAULT_MASTER_KEY_COMMAND": "no-such-kms-tool decrypt"}))
    with pytest.raises(ConfigError, match="did not finish within 1 s"):
        config = load_config({"CVAULT_MASTER_KEY_COMMAND": "sleep 30", "CVAULT_MASTER_KEY_COMMAND_TIMEOUT": "1"})
        require_master_key(config)
    with pytest.raises(ConfigError, match="base64 of 32 random bytes") as garbage:
        require_master_key(load_config({"CVAULT_MASTER_KEY_COMMAND": "echo not-a-key-hunter2"}))
    assert "hunter2" not in str(garbage.value)
    with pytest.raises(ConfigError, match="not both"):
        load_config({"CVAULT_MASTER_KEY_COMMAND": "true", "CVAULT_MASTER_KEY": base64.b64encode(key).decode()})
    with pytest.raises(ConfigError, match="quotes"):
        load_config({"CVAULT_MASTER_KEY_COMMAND": "age -d 'unterminated"})


def test_the_key_is_run_from_toml_as_an_argv_list(tmp_path: Path) -> None:
    key, identity, encrypted = _age_encrypted_key(tmp_path)
    toml = tmp_path / "cvault.toml"
    toml.write_text(f'master_key_command = ["age", "-d", "-i", "{identity}", "{encrypted}"]\n')
    assert require_master_key(load_config({}, toml)) == key


async def test_services_start_with_it_and_a_failing_command_stops_the_start(tmp_path: Path, database_url: str) -> None:
    key, identity, encrypted = _age_encrypted_key(tmp_path)
    env = cvault_env(
        {"CVAULT_DATABASE_URL": database_url, "CVAULT_MASTER_KEY_COMMAND": f"age -d -i {identity} {encrypted}"}
    )
    code, out, err = await run_cvault("keys", "status", env=env)
    assert code == 0, err
    assert "master:" in out and base64.b64encode(key).decode() not in out + err

    env["CVAULT_MASTER_KEY_COMMAND"] = f"age -d -i {tmp_path / 'missing.txt'} {encrypted}"
    env["CVAULT_AUTHORITY_LISTEN"] = "127.0.0.1:1"
    done = subprocess.run(
        cvault_command("serve", "authority"), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "CVAULT_MASTER_KEY_COMMAND: 'age' exited with status 1" in done.stderr
    assert "Traceback" not in done.stderr  # one clear sentence, no stack trace
