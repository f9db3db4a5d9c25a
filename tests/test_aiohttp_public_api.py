"""Issue 28 item 2: ``vault/`` uses aiohttp through its public API only, so an aiohttp release cannot break it silently.

A scan of the source (the AST, and the classes themselves for what they inherit) fails on:

* an import of a private aiohttp module or name (``aiohttp._http_parser``, ``web_protocol._ErrInfo``), or of a
  name its module does not export (not in its ``__all__``, such as ``http_exceptions.LineTooLong``);
* ``something._name`` in a module that imports aiohttp, on anything but ``self``/``cls`` (the named-tuple
  methods ``_replace`` and friends are public API spelled with an underscore), and ``getattr(x, "_name")``;
* ``module.name`` on an aiohttp module where ``name`` is not in the module's ``__all__``;
* in a class derived from an aiohttp class: a method named like a private one of aiohttp's (an override of a
  private hook, such as ``AppRunner._make_server``), ``self._name`` where ``_name`` is aiohttp's
  (``RequestHandler._messages``) or is set by no cvault class (aiohttp's instance attributes, ``Server._kwargs``);
* a class swap (``obj.__class__ = ...``) anywhere.

Each check is also run on planted code, so a check that stopped seeing its case fails too. What still depends
on aiohttp's behaviour (a parser error answered as JSON, the header deadline, the app's signals) is tested
end to end: ``tests/operations/test_malformed_requests.py``, ``tests/operations/test_connection_limits.py``
and the tests below.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import importlib
import importlib.util
import inspect
import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from vault.config import Config

from .support.serving import serving

VAULT = Path(__file__).resolve().parent.parent / "vault"

# collections.namedtuple's own methods: public, underscored so they cannot clash with a field's name.
NAMED_TUPLE_API = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})
ACCESSORS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_module(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except (ImportError, ValueError):
        return False


def _exported(module: str, name: str) -> bool:
    """``name`` is public API of the aiohttp module ``module``: a submodule, or listed in its ``__all__``."""
    if _is_module(f"{module}.{name}"):
        return True
    return name in getattr(importlib.import_module(module), "__all__", ())


def _self_or_cls(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _aiohttp_modules(tree: ast.AST) -> dict[str, str]:
    """Local names bound to aiohttp modules (``web`` -> ``aiohttp.web``); empty if the module imports no aiohttp."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "aiohttp":
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        bound["aiohttp"] = "aiohttp"
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "aiohttp":
            assert node.module is not None
            bound.setdefault("", node.module)  # marks the module as importing aiohttp
            for alias in node.names:
                if _is_module(f"{node.module}.{alias.name}"):
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _import_violations(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "aiohttp" and any(_private(p) for p in parts):
                    yield f"line {node.lineno}: imports the private module {alias.name}"
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "aiohttp":
            assert node.module is not None
            if any(_private(p) for p in node.module.split(".")):
                yield f"line {node.lineno}: imports from the private module {node.module}"
                continue
            for alias in node.names:
                if _private(alias.name) or not _exported(node.module, alias.name):
                    yield f"line {node.lineno}: imports {node.module}.{alias.name}, which aiohttp does not export"


def _access_violations(tree: ast.AST, modules: dict[str, str]) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if _private(node.attr) and not _self_or_cls(node.value) and node.attr not in NAMED_TUPLE_API:
                yield f"line {node.lineno}: reaches ._{node.attr.lstrip('_')} of something not its own"
            elif (
                isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.value.id
                and not _exported(modules[node.value.id], node.attr)
            ):
                yield f"line {node.lineno}: uses {modules[node.value.id]}.{node.attr}, which aiohttp does not export"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ACCESSORS
            and len(node.args) >= 2
            and not _self_or_cls(node.args[0])
        ):
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and _private(name.value):
                yield f"line {node.lineno}: {node.func.id}(..., {name.value!r}) reaches a private name"


def _class_swaps(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr == "__class__":
                yield f"line {target.lineno}: swaps an object's class"


def _classes(body: list[ast.stmt], scope: object) -> Iterator[tuple[ast.ClassDef, type]]:
    for node in body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(scope, node.name, None)
            if isinstance(cls, type):
                yield node, cls
                yield from _classes(node.body, cls)


def _own_names(cls: type) -> set[str]:
    """Names the class and its non-aiohttp bases define: methods, class attributes, ``self.x = ...`` targets."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in ("aiohttp", "builtins", "typing", "abc"):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        names.update(klass.__dict__)
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            names.update(t.attr for t in targets if isinstance(t, ast.Attribute) and _self_or_cls(t.value))
    return names


def _has(classes: list[type], name: str) -> bool:
    return any(hasattr(klass, name) for klass in classes)


def _subclass_violations(tree: ast.Module, module: ModuleType) -> Iterator[str]:
    for node, cls in _classes(tree.body, module):
        bases = [b for b in cls.__mro__ if b.__module__.split(".")[0] == "aiohttp"]
        if not bases:
            continue
        own = _own_names(cls)
        for item in ast.walk(node):
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(item.name):
                if _has(bases, item.name):
                    yield f"line {item.lineno}: {cls.__name__} overrides aiohttp's private {item.name}"
            elif isinstance(item, ast.Attribute) and _self_or_cls(item.value) and _private(item.attr):
                if _has(bases, item.attr):
                    yield f"line {item.lineno}: {cls.__name__} uses aiohttp's private {item.attr}"
                elif item.attr not in own:
                    yield f"line {item.lineno}: {cls.__name__} uses {item.attr}, which no cvault class sets"


def violations(path: Path, load: Callable[[], ModuleType]) -> list[str]:
    """Every use of a private aiohttp name in the module at ``path``; ``load`` imports it, if it imports aiohttp."""
    tree = ast.parse(path.read_text())
    found = [*_import_violations(tree), *_class_swaps(tree)]
    modules = _aiohttp_modules(tree)
    if modules:
        found += [*_access_violations(tree, modules), *_subclass_violations(tree, load())]
    return found


def _vault_modules() -> list[tuple[Path, str]]:
    return [
        (path, ".".join(path.relative_to(VAULT.parent).with_suffix("").parts).removesuffix(".__init__"))
        for path in sorted(VAULT.rglob("*.py"))
    ]


def test_vault_reaches_no_private_aiohttp_name() -> None:
    found = []
    for path, name in _vault_modules():
        load = functools.partial(importlib.import_module, name)
        found += [f"{path.relative_to(VAULT.parent)} {v}" for v in violations(path, load)]
    assert found == []


def test_the_scan_reads_the_serving_modules() -> None:
    # The scan only looks closely at modules that import aiohttp: the serving modules must be among them.
    read = {name for path, name in _vault_modules() if _aiohttp_modules(ast.parse(path.read_text()))}
    assert {"vault.web.app_runner", "vault.web.connections", "vault.web.protocol", "vault.web.runner"} <= read


PLANTED = {
    "private module": "from aiohttp._websocket import reader\n",
    "private name": "from aiohttp.web_protocol import _ErrInfo\n",
    "unexported name": "from aiohttp.http_exceptions import LineTooLong\n",
    "attribute": "from aiohttp import web\n\ndef f(runner):\n    return runner._server\n",
    "getattr": "from aiohttp import web\n\ndef f(loop):\n    return getattr(loop, '_flag', False)\n",
    "module attribute": "import aiohttp.http_exceptions as errors\n\nX = errors.LineTooLong\n",
    "class swap": "def f(server, cls):\n    server.__class__ = cls\n",
    "private override": (
        "from aiohttp import web\n\nclass R(web.AppRunner):\n    async def _make_server(self):\n        return None\n"
    ),
    "inherited slot": (
        "from aiohttp import web\n\nclass H(web.RequestHandler):\n    def f(self):\n        return self._messages\n"
    ),
    "inherited instance attribute": (
        "from aiohttp import web\n\nclass S(web.Server):\n    def __call__(self):\n        return self._kwargs\n"
    ),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_each_check_catches_planted_code(case: str, tmp_path: Path) -> None:
    path = tmp_path / f"planted_{case.replace(' ', '_')}.py"
    path.write_text(PLANTED[case])
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
        assert violations(path, lambda: module) != [], case
    finally:
        del sys.modules[path.stem]


def test_own_private_names_and_public_overrides_pass(tmp_path: Path) -> None:
    path = tmp_path / "planted_clean.py"
    path.write_text(
        "from typing import NamedTuple\n"
        "from aiohttp import web\n\n"
        "class P(NamedTuple):\n    a: int\n\n"
        "class H(web.RequestHandler):\n"
        "    def __init__(self, *a, **k):\n        super().__init__(*a, **k)\n        self._mine = 1\n\n"
        "    def handle_error(self, *a, **k):\n        return self._mine, P(1)._replace(a=2)\n"
    )
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
        assert violations(path, lambda: module) == []
    finally:
        del sys.modules[path.stem]


# --- What the public-API runner must still do.


async def test_the_app_signals_run_where_aiohttp_runs_them() -> None:
    """on_shutdown runs before the runner waits for open requests (so a long poll can end), on_cleanup last."""
    from vault.web.app_runner import VaultAppRunner

    events: list[str] = []
    shutting_down = asyncio.Event()
    entered = asyncio.Event()

    async def long_poll(request: web.Request) -> web.Response:
        entered.set()
        await asyncio.wait_for(shutting_down.wait(), 30)
        events.append("request answered")
        return web.json_response({})

    async def on_startup(app: web.Application) -> None:
        events.append("startup")

    async def on_shutdown(app: web.Application) -> None:
        events.append("shutdown")
        shutting_down.set()

    async def on_cleanup(app: web.Application) -> None:
        events.append("cleanup")

    app = web.Application()
    app.router.add_get("/poll", long_poll)
    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    runner = VaultAppRunner(app)
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(entered.wait(), 30)
    await runner.cleanup()
    status = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    assert status.startswith(b"HTTP/1.1 200")
    assert events == ["startup", "shutdown", "request answered", "cleanup"]


async def _raw(port: int, request: bytes) -> tuple[bytes, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        return head, await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


async def test_cvault_serve_takes_headers_up_to_its_limit_and_answers_parser_errors_as_json() -> None:
    # serve_app once ran aiohttp's 8190-byte header limit: a bundle over it was a text/plain 400.
    async with serving(Config(dev=True)) as port:
        long = b"Bearer cv1_" + b"A" * 20_000
        head, _ = await _raw(
            port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: " + long + b"\r\n\r\n"
        )
        assert head.startswith(b"HTTP/1.1 200"), head
        head, body = await _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer cv1_\x7f\r\n\r\n")
        assert head.split(b"\r\n")[0].endswith(b" 400 Bad Request"), head
        assert json.loads(body)["error"]["code"] == "bad_request"
