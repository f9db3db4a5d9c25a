"""Dependencies point inward: the layers import only what DESIGN §1 and STYLE allow."""

from __future__ import annotations

import ast
from pathlib import Path

VAULT = Path(__file__).resolve().parents[1] / "vault"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _files(package: str) -> list[Path]:
    return sorted((VAULT / package).rglob("*.py")) if (VAULT / package).is_dir() else []


def test_pure_layers_import_only_errors_from_vault() -> None:
    for package in ("macaroon", "crypto"):
        for f in _files(package):
            bad = {m for m in _imports(f) if m.startswith("vault") and m not in ("vault.errors", "vault")}
            assert not bad, f"{f.relative_to(VAULT)} imports {bad}"
            assert not {m for m in _imports(f) if m.split(".")[0] in ("aiohttp", "asyncpg")}, f


def test_only_storage_imports_asyncpg() -> None:
    for f in VAULT.rglob("*.py"):
        if "asyncpg" in {m.split(".")[0] for m in _imports(f)}:
            assert f.relative_to(VAULT).parts[0] == "storage", f"{f.relative_to(VAULT)} imports asyncpg"


def test_only_web_imports_aiohttp_web() -> None:
    for f in VAULT.rglob("*.py"):
        if "aiohttp.web" in _imports(f) or "from aiohttp import web" in f.read_text():
            assert f.relative_to(VAULT).parts[0] == "web", f"{f.relative_to(VAULT)} imports aiohttp.web"


def test_only_crypto_imports_hazmat_and_nacl() -> None:
    # vault/macaroon/crypto.py is the documented exception: the token format's AEAD (docs/decisions.md).
    allowed = {VAULT / "macaroon" / "crypto.py"}
    for f in VAULT.rglob("*.py"):
        risky = {m for m in _imports(f) if m.startswith("cryptography.hazmat") or m.split(".")[0] == "nacl"}
        if risky and f not in allowed:
            assert f.relative_to(VAULT).parts[0] == "crypto", f"{f.relative_to(VAULT)} imports {risky}"
