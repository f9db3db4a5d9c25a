"""The one exception tree: every error code unique, every class one status, the tree drawn as it is.

Every module of the package is imported first, so an error class defined outside ``vault/errors.py`` (such as the
authority's ``InvalidCredentials``) is held to the same rules.
"""

from __future__ import annotations

import importlib
import pkgutil

import vault
from vault import errors
from vault.client.errors import UnknownCode, error_from_reply


def _all_error_classes() -> list[type[errors.VaultError]]:
    for module in pkgutil.walk_packages(vault.__path__, prefix="vault."):
        if module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)
    found: list[type[errors.VaultError]] = []
    pending: list[type[errors.VaultError]] = [errors.VaultError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_error_code_is_unique() -> None:
    by_code: dict[str, list[str]] = {}
    for cls in _all_error_classes():
        if cls is not UnknownCode and issubclass(cls, UnknownCode):
            continue  # the client's carriers of a server's unknown code, one per status (vault/client/errors.py)
        by_code.setdefault(cls.code, []).append(f"{cls.__module__}.{cls.__qualname__}")
    assert {code: names for code, names in by_code.items() if len(names) > 1} == {}


def test_every_class_maps_to_one_http_error_status() -> None:
    bad = [cls.__qualname__ for cls in _all_error_classes() if not (400 <= cls.status <= 599)]
    assert bad == []


def test_codes_are_stable_snake_case() -> None:
    bad = [
        cls.code
        for cls in _all_error_classes()
        if not cls.code.replace("_", "").isalnum() or cls.code.lower() != cls.code
    ]
    assert bad == []


def test_the_docstring_tree_names_every_class_of_the_module_with_its_code() -> None:
    tree = errors.__doc__ or ""
    missing = [
        f"{cls.__name__} {cls.code}"
        for cls in _all_error_classes()
        if cls.__module__ == errors.__name__
        and not any(cls.__name__ in line and cls.code in line for line in tree.splitlines())
    ]
    assert missing == []


def test_all_lists_exactly_the_classes_of_the_module() -> None:
    classes = {cls.__name__ for cls in _all_error_classes() if cls.__module__ == errors.__name__}
    assert sorted(errors.__all__) == sorted(classes)


def test_the_client_turns_every_code_back_into_its_class() -> None:
    for cls in _all_error_classes():
        if cls.__module__ != errors.__name__:
            continue
        raised = error_from_reply(cls.status, {"error": {"code": cls.code, "message": "m"}}, service="store")
        assert type(raised) is cls, cls.code
