"""``cvault`` imports only what the chosen command uses: checked on the real entry point.

``python -X importtime`` lists every module a run imports, so a heavy import
slipping back into ``vault/cli/main.py`` (or into a command module's top level)
fails here rather than silently costing every invocation half a second.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

import vault
from tests.cli import cvault_command, cvault_env
from vault.cli.main import COMMANDS, build_parser

HEAVY = ("aiohttp", "asyncpg", "vault.web", "vault.storage.pool", "vault.authority", "vault.store", "cryptography")


def imported_modules(*args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    command = cvault_command(*args)
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        env=cvault_env(),
        capture_output=True,
        text=True,
        timeout=60,
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
