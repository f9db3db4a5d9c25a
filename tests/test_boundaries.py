"""Import boundaries from STYLE.md and docs/architecture.md, checked on the source so a violation fails CI.

Each rule is also run against a planted bad import (``test_each_rule_catches_a_planted_import``), so a rule that
stopped seeing imports (as one did when ``from aiohttp import web`` was recorded only as ``aiohttp``) fails too.
"""

from __future__ import annotations

import ast
import re
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
    """Modules under ``packages`` import nothing under any of ``forbidden``, except the ``allowed`` pairs.

    A part is a package (``vault/store/``) or a top-level module (``vault/mail.py``).
    """

    name: str
    packages: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed: frozenset[tuple[str, str]] = frozenset()

    def violations(self, root: Path) -> list[str]:
        found = []
        for package in self.packages:
            module_file = root / f"{package}.py"
            paths = [module_file] if module_file.is_file() else sorted((root / package).rglob("*.py"))
            for path in paths:
                module = path.relative_to(root).as_posix()
                for name in _imports(path, root):
                    if any(_under(name, prefix) for prefix in self.forbidden) and not any(
                        module == allowed_module and _under(name, prefix) for allowed_module, prefix in self.allowed
                    ):
                        found.append(f"{module} imports {name}")
        return found


def _parts(root: Path) -> tuple[str, ...]:
    """Every part of ``vault``: its packages and its top-level modules, as the layout table lists them."""
    packages = (p.name for p in root.iterdir() if (p / "__init__.py").is_file())
    modules = (p.stem for p in root.glob("*.py") if p.name != "__init__.py")
    return tuple(sorted([*packages, *modules]))


_ALL = _parts(VAULT)
# The pure modules every layer may share (docs/architecture.md, "The dependency rule").
PURE_CORE = ("macaroon", "crypto", "types", "errors")
PURE_SHARED = ("batcher", "authorization", "names")
DOMAINS = ("authority", "store", "audit")


def _others(*owners: str) -> tuple[str, ...]:
    return tuple(p for p in _ALL if p not in owners)


def _vault_except(*allowed: str) -> tuple[str, ...]:
    """Every part of ``vault`` but ``allowed``, as import prefixes: an allow-list, so a new module is refused."""
    return tuple(f"vault.{p}" for p in _ALL if p not in allowed)


def test_the_layout_table_lists_every_part() -> None:
    table = (VAULT.parent / "docs" / "architecture.md").read_text().split("## The dependency rule")[0]
    listed = set(re.findall(r"^\| `vault/(\w+)(?:/|\.py)`", table, re.MULTILINE))
    assert listed == set(_ALL), "docs/architecture.md's layout table and vault/ differ"


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
    # The CLI composes every process; nothing composes the CLI.
    Rule("no part imports the CLI", _others("cli"), ("vault.cli",)),
    # The pure core: no I/O, nothing of the product but the error tree and the shared type aliases.
    Rule(
        "pure core imports only errors and types, and no edge library",
        ("macaroon", "crypto"),
        ("aiohttp", "asyncpg", *_vault_except("macaroon", "crypto", "types", "errors")),
    ),
    Rule("token core does not import crypto", ("macaroon",), ("vault.crypto",)),
    Rule(
        "pure shared modules import only errors and types, and no edge library",
        ("types", "errors", *PURE_SHARED),
        ("aiohttp", "asyncpg", *_vault_except("types", "errors")),
    ),
    # Domains depend on the protocols they define; adapters (storage, web, mail) depend on domains, never the reverse.
    Rule(
        "domains import only the pure modules and one another",
        DOMAINS,
        ("aiohttp", "asyncpg", *_vault_except(*PURE_CORE, *PURE_SHARED, *DOMAINS)),
    ),
    Rule(
        "config imports only the pure modules",
        ("config",),
        ("aiohttp", "asyncpg", *_vault_except(*PURE_CORE, *PURE_SHARED, "config")),
    ),
    Rule(
        "logs imports only the pure modules",
        ("logs",),
        ("aiohttp", "asyncpg", *_vault_except(*PURE_CORE, *PURE_SHARED, "logs")),
    ),
    # The mail adapter implements the authority's Mailer port from the services' settings, and knows nothing else.
    Rule(
        "mail imports only the pure modules, config and the authority's ports",
        ("mail",),
        ("aiohttp", "asyncpg", *_vault_except(*PURE_CORE, *PURE_SHARED, "config", "mail")),
        frozenset({("mail.py", "vault.authority.interfaces")}),
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
    # The console reads the store's audit API with the reviewer's credentials, as `cvault audit` does.
    Rule(
        "web imports the client only in the console, and never the CLI",
        ("web",),
        ("vault.client", "vault.cli"),
        frozenset({(f"web/console/{module}.py", "vault.client") for module in ("app", "reviewer")}),
    ),
    # The client is the server's peer over HTTP: it shares the pure modules and reads its own settings, nothing else.
    Rule(
        "client imports no server side",
        ("client",),
        ("asyncpg", "aiohttp.web", *_vault_except(*PURE_CORE, *PURE_SHARED, "client")),
        frozenset({("client/environment.py", "vault.config")}),
    ),
]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_rule_holds(rule: Rule) -> None:
    assert rule.violations(VAULT) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
@pytest.mark.parametrize("which", [0, -1], ids=["first", "last"])
def test_each_rule_catches_a_planted_import(rule: Rule, which: int, tmp_path: Path) -> None:
    root = tmp_path / "vault"
    package = rule.packages[0]
    (root / package).mkdir(parents=True)
    # The first forbidden name and the last (of an allow-list, a part of vault such as vault.web or vault.types).
    forbidden = rule.forbidden[which]
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
