"""Workload bindings' claim rules, and the readable name of a workload: pure.

A binding's ``claims`` map a claim name to a pattern. A name is a top-level claim
(``sub``, ``repository``, ``job_workflow_ref``), or a path into nested claims
separated by ``/`` (``kubernetes.io/namespace`` reads ``{"kubernetes.io":
{"namespace": ...}}``, as Kubernetes writes them); a top-level claim of exactly that
name wins. A pattern matches the whole value: ``*`` stands for any run of characters
(none included), every other character for itself (``?`` and ``[`` are not special).
The claim must be present and a non-empty string: a number, a list, an object, a
missing or empty claim never matches, whatever the pattern (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from vault.errors import BadRequest

__all__ = [
    "MAX_CLAIM_RULES",
    "check_claim_rules",
    "claim_value",
    "mismatched_claims",
    "pattern_matches",
    "workload_label",
]

MAX_CLAIM_RULES = 32
_MAX_NAME = 128
_MAX_PATTERN = 512
_MAX_LABEL = 200
_GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def pattern_matches(pattern: str, value: str) -> bool:
    """Whether ``value`` (non-empty) matches ``pattern`` as a whole; ``*`` is the only wildcard."""
    if not value:
        return False
    if "*" not in pattern:
        return pattern == value
    return _compiled(pattern).fullmatch(value) is not None


def claim_value(claims: Mapping[str, Any], name: str) -> Any:
    """The claim ``name`` (a top-level claim, else a ``/`` path into nested objects); ``None`` if absent."""
    if name in claims:
        return claims[name]
    node: Any = claims
    for part in name.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def mismatched_claims(rules: Mapping[str, str], claims: Mapping[str, Any]) -> list[str]:
    """The names of the rules ``claims`` fail (empty: every rule holds)."""
    failed = []
    for name, pattern in rules.items():
        value = claim_value(claims, name)
        if not isinstance(value, str) or not pattern_matches(pattern, value):
            failed.append(name)
    return failed


def check_claim_rules(rules: object) -> dict[str, str]:
    """Validate a binding's claim rules (an object of name -> pattern); :class:`BadRequest` if malformed."""
    if not isinstance(rules, dict) or not rules:
        raise BadRequest('claims must be a non-empty object of claim name -> pattern, e.g. {"sub": "repo:acme/*"}')
    if len(rules) > MAX_CLAIM_RULES:
        raise BadRequest(f"at most {MAX_CLAIM_RULES} claim rules")
    checked: dict[str, str] = {}
    for name, pattern in rules.items():
        if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME or not name.isprintable():
            raise BadRequest(f"claim names are 1 to {_MAX_NAME} printable characters")
        if name in ("iss", "aud", "exp", "nbf", "iat", "jti"):
            raise BadRequest(f"claim {name!r} is checked by the authority itself; it cannot be a rule")
        if not isinstance(pattern, str) or not 0 < len(pattern) <= _MAX_PATTERN or not pattern.isprintable():
            raise BadRequest(f"claim {name!r}: a pattern is 1 to {_MAX_PATTERN} printable characters")
        if pattern.strip("*") == "":
            # "*" alone would accept every workload of the issuer: name the subject you mean.
            raise BadRequest(f"claim {name!r}: a pattern needs at least one character besides '*'")
        checked[name] = pattern
    if "sub" not in checked:
        raise BadRequest("claims must include a rule for 'sub' (exact or with '*')")
    return checked


def workload_label(issuer: str, claims: Mapping[str, Any]) -> str:
    """A short readable name of the workload, for audit events and the console."""
    kubernetes = claims.get("kubernetes.io")
    if isinstance(kubernetes, Mapping):
        namespace = claim_value(kubernetes, "namespace")
        account = claim_value(kubernetes, "serviceaccount/name")
        label = f"kubernetes: ns/{namespace} sa/{account}"
    elif issuer == _GITHUB_ISSUER or "job_workflow_ref" in claims:
        label = f"github: {claims.get('repository')}@{claims.get('ref')}"
    else:
        host = issuer.removeprefix("https://").split("/", 1)[0]
        label = f"{host}: {claims.get('sub')}"
    cleaned = "".join(c if c.isprintable() else "?" for c in label)
    return cleaned[:_MAX_LABEL]
