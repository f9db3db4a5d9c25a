"""``cvault`` imports only what the chosen command uses: checked on the real entry point.

``python -X importtime`` lists every module a run imports, so a heavy import
slipping back into ``vault/cli/main.py`` (or into a command module's top level)
fails here rather than silently costing every invocation half a second.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import vault
from tests.support.cvault_command import cvault_command, cvault_env
from tests.support.dev_world import STEP_BOUND, DevWorld, make_dev_world
from vault.cli.main import COMMANDS, build_parser

HEAVY = ("aiohttp", "asyncpg", "vault.web", "vault.storage.pool", "vault.authority", "vault.store", "cryptography")


def imported_modules(
    *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    command = cvault_command(*args)
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        env=dict(cvault_env() if env is None else env),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STEP_BOUND,
        check=False,
    )
    modules = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return modules, done


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("args", [["--help"], ["--version"], []])
def test_help_and_version_import_no_server_or_http_code(args: list[str]) -> None:
    modules, done = imported_modules(*args)
    assert "vault.cli.main" in modules, done.stderr[-2000:]
    assert heavy_in(modules) == []
    # Not one command module either: the listing comes from the table.
    assert sorted(m for m in modules if m.startswith("vault.cli.") and m != "vault.cli.main") in (
        [],
        ["vault.cli.__main__"],
    )


def test_version_prints_the_package_version() -> None:
    _modules, done = imported_modules("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"cvault {vault.__version__}"


def test_help_lists_every_command_and_the_exit_codes() -> None:
    _modules, done = imported_modules("--help")
    assert done.returncode == 0
    for name in COMMANDS:
        assert name in done.stdout
    assert "Exit status" in done.stdout


def test_an_unknown_command_is_a_usage_error_naming_the_choices() -> None:
    modules, done = imported_modules("sekrets", "list")
    assert done.returncode == 2 and "invalid choice: 'sekrets'" in done.stderr and "secrets" in done.stderr
    assert heavy_in(modules) == []


def test_audit_query_help_does_not_import_the_database_driver() -> None:
    modules, done = imported_modules("audit", "query", "--help")
    assert done.returncode == 0 and "--secret" in done.stdout
    assert "asyncpg" not in modules


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_table_entry_is_registered_by_its_module_with_the_same_help(name: str) -> None:
    parser = build_parser(name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    registered = {choice.dest: choice.help for choice in sub._choices_actions}
    assert registered.get(name) == COMMANDS[name].help
    assert sub.choices[name].get_default("func") is not None or sub.choices[name]._subparsers is not None


def test_the_full_parser_registers_every_module_once() -> None:
    parser = build_parser(full=True)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS)
    assert sys.modules.get("vault.cli.main") is not None


# -- the client commands, against a real `cvault dev` ------------------------------------
#
# What each needs is the standard library's http.client (vault/client/blocking_http.py), the token
# core's HMAC and SHA-256, and its own module: not the event loop (the blocking transport's calls
# are driven without one), not aiohttp, not `cryptography` (only sealing or opening a ticket or a
# fallback file needs it).

NOT_FOR_A_CLIENT_COMMAND = (
    "asyncio",
    "aiohttp",
    "cryptography",
    "asyncpg",
    "vault.web",
    "vault.storage",
)


@pytest.fixture(scope="module")
def dev(postgres_server: str, template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWorld]:
    yield from make_dev_world(postgres_server, template_database, tmp_path_factory)


def _not_needed(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in NOT_FOR_A_CLIENT_COMMAND))


@pytest.mark.parametrize(
    ("who", "args", "stdin"),
    [
        ("wl", ["run", "--vault", "prod", "--", "true"], None),
        ("wl", ["secrets", "list", "--vault", "prod"], None),
        ("wl", ["secrets", "get", "db/url", "--vault", "prod"], None),
        ("op", ["vaults", "list"], None),
        ("op", ["secrets", "set", "imports/probe", "--vault", "prod"], "v"),
        ("op", ["orgs", "list"], None),
        ("op", ["tokens", "list"], None),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_client_command_imports_no_event_loop_aiohttp_or_cryptography(
    dev: DevWorld, who: str, args: list[str], stdin: str | None
) -> None:
    modules, done = imported_modules(*args, env=dev.wl if who == "wl" else dev.op, stdin=stdin)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "vault.client.blocking_http" in modules and "http.client" in modules  # it did send its requests
    assert _not_needed(modules) == []


def test_tokens_debug_offline_imports_no_http_at_all(dev: DevWorld) -> None:
    modules, done = imported_modules("tokens", "debug", dev.workload_store["token"], env=dev.wl)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _not_needed(modules) == [] and "vault.client.blocking_http" not in modules and "http.client" not in modules


def test_what_needs_the_event_loop_or_aes_still_gets_it(dev: DevWorld, tmp_path: Path) -> None:
    """The lazy imports are where the work is: `--watch` runs on asyncio, `--fallback` seals with AES-GCM."""
    cache = tmp_path / "fallback.bin"
    args = ["run", "--vault", "prod", "--fallback", str(cache), "--write-fallback", "--", "true"]
    modules, done = imported_modules(*args, env=dev.wl)
    assert done.returncode == 0 and cache.exists(), done.stderr[-2000:]
    assert "cryptography" in modules and "asyncio" not in modules
    modules, done = imported_modules(
        "run", "--vault", "prod", "--env-file", str(tmp_path / "env"), "--", "true", env=dev.wl
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "asyncio" in modules and "aiohttp" not in modules
