"""Import boundaries from STYLE.md and docs/architecture.md, checked on the source so a violation fails CI.

Each rule is also run against a planted bad import (``test_each_rule_catches_a_planted_import``), so a rule that
stopped seeing imports (as one did when ``from aiohttp import web`` was recorded only as ``aiohttp``) fails too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

VAULT = Path(__file__).resolve().parent.parent / "vault"


def _imports(path: Path, root: Path) -> Iterator[str]:
    parts = path.relative_to(root.parent).with_suffix("").parts
    package = ".".join(parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module
            # `from aiohttp import web` imports aiohttp.web: each name is recorded as a submodule too, so a rule
            # on a submodule cannot be dodged by importing it from its parent.
            yield from (f"{module}.{alias.name}" for alias in node.names)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@dataclass(frozen=True)
class Rule:
    """Modules under ``packages`` import nothing under any of ``forbidden``, except the ``allowed`` pairs."""

    name: str
    packages: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed: frozenset[tuple[str, str]] = frozenset()

    def violations(self, root: Path) -> list[str]:
        found = []
        for package in self.packages:
            for path in sorted((root / package).rglob("*.py")):
                module = path.relative_to(root).as_posix()
                for name in _imports(path, root):
                    if any(_under(name, prefix) for prefix in self.forbidden) and not any(
                        module == allowed_module and _under(name, prefix) for allowed_module, prefix in self.allowed
                    ):
                        found.append(f"{module} imports {name}")
        return found


_EDGES = ("aiohttp", "asyncpg", "vault.storage", "vault.web", "vault.client", "vault.cli")
_ALL = ("macaroon", "crypto", "storage", "authority", "store", "audit", "web", "client", "cli")


def _others(*owners: str) -> tuple[str, ...]:
    return tuple(p for p in _ALL if p not in owners)


RULES = [
    # Third-party libraries each owned by one package.
    Rule("asyncpg only in storage", _others("storage"), ("asyncpg",)),
    Rule("nacl only in crypto", _others("crypto"), ("nacl",)),
    # The token format's AEAD (ChaCha20-Poly1305) is part of the wire format; see docs/decisions.md.
    Rule(
        "cryptography.hazmat only in crypto",
        _others("crypto"),
        ("cryptography.hazmat",),
        frozenset({("macaroon/crypto.py", "cryptography.hazmat")}),
    ),
    Rule("aiohttp.web only in web", _others("web"), ("aiohttp.web",)),
    # The pure core: no I/O, nothing of the product but the error tree and the shared type aliases.
    Rule(
        "pure core and crypto import no edge and no domain",
        ("macaroon", "crypto"),
        (*_EDGES, "vault.authority", "vault.store", "vault.audit", "vault.config"),
    ),
    Rule("token core does not import crypto", ("macaroon",), ("vault.crypto",)),
    # Domains depend on the protocols they define; adapters (storage, web) depend on domains, never the reverse.
    Rule(
        "domains import no adapter",
        ("authority", "store", "audit"),
        _EDGES,
    ),
    Rule("storage imports no web or client", ("storage",), ("aiohttp", "vault.web", "vault.client", "vault.cli")),
    # Handlers see services and ports only; the app factories are the one place that builds the adapters.
    Rule(
        "web imports storage only in the app wiring",
        ("web",),
        ("vault.storage",),
        frozenset(
            {(f"web/{app}/app.py", "vault.storage") for app in ("store", "authority", "console")}
            # Known debt (issue 17's key list follower polls over HTTP on storage's ChannelFollower): the one
            # exception, until the follower's base class moves out of storage.
            | {("web/store/authority_keys.py", "vault.storage.channel_follower")}
        ),
    ),
    Rule("client imports no server side", ("client",), ("asyncpg", "aiohttp.web", "vault.storage", "vault.web")),
]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_rule_holds(rule: Rule) -> None:
    assert rule.violations(VAULT) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_each_rule_catches_a_planted_import(rule: Rule, tmp_path: Path) -> None:
    root = tmp_path / "vault"
    package = rule.packages[0]
    (root / package).mkdir(parents=True)
    forbidden = rule.forbidden[0]
    parent, _, leaf = forbidden.rpartition(".")
    # The `from parent import leaf` form, the one that once slipped through.
    planted = f"from {parent} import {leaf}\n" if parent else f"import {forbidden}\n"
    (root / package / "planted.py").write_text(planted)
    assert f"{package}/planted.py imports {forbidden}" in rule.violations(root)


def test_repository_naming_rule() -> None:
    """A port ``XRepository`` in a domain's interfaces, its PostgreSQL adapter ``PgXRepository``."""
    wrong = []
    for path in sorted((VAULT / "storage").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            doc = ast.get_docstring(node) or ""
            if doc.startswith("Implements :class:`vault.") and ".interfaces." in doc.split("`")[1]:
                port = doc.split("`")[1].rsplit(".", 1)[1]
                if port.endswith("Repository") and node.name != f"Pg{port}":
                    wrong.append(f"{path.name}: {node.name} implements {port}")
            if node.name.endswith("Repository") and not node.name.startswith("Pg"):
                wrong.append(f"{path.name}: {node.name} is an adapter; call it Pg{node.name}")
    for domain in ("authority", "store", "audit"):
        interfaces = VAULT / domain / "interfaces.py"
        if not interfaces.exists():
            continue
        for node in ast.parse(interfaces.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith("Store"):
                wrong.append(f"{domain}/interfaces.py: {node.name}; a port is named XRepository")
    assert wrong == []


def _package_graph(root: Path) -> dict[str, set[str]]:
    """Which top-level part of ``vault`` (a package, or a module such as ``types``) imports which other."""
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        importer = path.relative_to(root).parts[0].removesuffix(".py")
        for name in _imports(path, root):
            parts = name.split(".")
            if parts[0] != "vault" or len(parts) == 1 or parts[1] == importer:
                continue
            if (root / parts[1]).is_dir() or (root / f"{parts[1]}.py").exists():
                graph.setdefault(importer, set()).add(parts[1])
    return graph


def _a_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle between packages, as the path that closes it, or ``[]``."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for target in sorted(graph.get(node, ())):
            if found := visit(target, [*path, node]):
                return found
        done.add(node)
        return []

    for start in sorted(graph):
        if found := visit(start, []):
            return found
    return []


def test_no_import_cycle_between_packages() -> None:
    # Function-level and TYPE_CHECKING imports count too: a cycle hidden in a lazy import is still a cycle in design.
    assert _a_cycle(_package_graph(VAULT)) == []


def test_a_planted_cycle_is_found(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    for package, target in (("store", "audit"), ("audit", "store")):
        (root / package).mkdir(parents=True)
        (root / package / "planted.py").write_text(f"from vault.{target} import planted\n")
    assert _a_cycle(_package_graph(root)) == ["audit", "store", "audit"]
