"""Import boundaries from STYLE.md, checked on the source so a violation fails CI."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

VAULT = Path(__file__).resolve().parent.parent / "vault"


def _imports(path: Path) -> Iterator[str]:
    package = ".".join(path.relative_to(VAULT.parent).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(VAULT.parent).parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield ".".join([*base, node.module] if node.module else base)
            else:
                yield node.module or ""


def _modules(under: str = "") -> list[Path]:
    return sorted((VAULT / under).rglob("*.py"))


def _owner(path: Path) -> str:
    return path.relative_to(VAULT).parts[0]


# The token format's AEAD (ChaCha20-Poly1305) is part of the wire format; see docs/decisions.md.
_EXCEPTIONS = {(VAULT / "macaroon" / "crypto.py", "cryptography.hazmat")}


@pytest.mark.parametrize(
    ("prefix", "allowed_package"),
    [("asyncpg", "storage"), ("nacl", "crypto"), ("cryptography.hazmat", "crypto"), ("aiohttp.web", "web")],
)
def test_only_one_package_imports(prefix: str, allowed_package: str) -> None:
    offenders = [
        f"{path.relative_to(VAULT.parent)} imports {name}"
        for path in _modules()
        for name in _imports(path)
        if (name == prefix or name.startswith(prefix + "."))
        and _owner(path) != allowed_package
        and (path, prefix) not in _EXCEPTIONS
    ]
    assert offenders == []


@pytest.mark.parametrize("package", ["crypto", "macaroon"])
def test_pure_packages_import_nothing_of_cvault_but_errors(package: str) -> None:
    offenders = [
        f"{path.relative_to(VAULT.parent)} imports {name}"
        for path in _modules(package)
        for name in _imports(path)
        if (name == "vault" or name.startswith("vault."))
        and name != "vault.errors"
        and not name.startswith(f"vault.{package}")
    ]
    assert offenders == []
