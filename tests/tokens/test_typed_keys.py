"""A signing key, a sealing key and a public key are distinct types to mypy: a swap fails the type check.

Each case runs mypy (its API, the project's settings) on a small program; the correct call is checked too, so the
test fails if the types stop being distinct *or* if the snippet stops type-checking for another reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
from vault.macaroon import EncryptionKey, Macaroon, SigningKey, add_third_party, open_ticket, verify

root = SigningKey(bytes(32))
shared = EncryptionKey(bytes(32))
public = bytes(32)
token = Macaroon.mint(b"kid", "https://store.example", {mint_key})
token = add_third_party(token, "https://authority.example/org", {third_party_args})
open_ticket(b"ticket", {ticket_key})
verify(token, {verify_key}, now=0)
"""

RIGHT = {"mint_key": "root", "third_party_args": "shared, public", "ticket_key": "shared", "verify_key": "root"}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the module's cases: vault's modules are analysed once, not once per case."""
    return tmp_path_factory.mktemp("mypy-cache")


def _mypy(tmp_path: Path, cache_dir: Path, **wrong: str) -> tuple[int, str]:
    source = tmp_path / "snippet.py"
    source.write_text(PROGRAM.format(**{**RIGHT, **wrong}))
    out, err, status = api.run(
        [
            "--strict",
            "--follow-imports=silent",
            "--no-error-summary",
            "--cache-dir",
            str(cache_dir),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            str(source),
        ]
    )
    return status, out + err


def test_the_right_keys_type_check(tmp_path: Path, cache_dir: Path) -> None:
    status, output = _mypy(tmp_path, cache_dir)
    assert status == 0, output


@pytest.mark.parametrize(
    "wrong",
    [
        {"third_party_args": "public, shared"},  # the shared key and the first party's public key swapped
        {"third_party_args": "root, public"},  # a signing key where the sealing key goes
        {"mint_key": "shared"},  # a token signed with a sealing key
        {"ticket_key": "public"},  # a ticket opened with a public key
        {"verify_key": "bytes(32)"},  # bare bytes as a root key
    ],
    ids=lambda wrong: next(iter(wrong.values())),
)
def test_a_swapped_key_fails_the_type_check(tmp_path: Path, cache_dir: Path, wrong: dict[str, str]) -> None:
    status, output = _mypy(tmp_path, cache_dir, **wrong)
    assert status == 1 and "incompatible type" in output, output
