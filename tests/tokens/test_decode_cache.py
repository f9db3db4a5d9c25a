"""The token decode memo is an object its owner keeps (the store's token service), not state of the token core."""

from __future__ import annotations

import ast
from pathlib import Path

from vault.macaroon import Caveat, Macaroon, decode_token, encode_bundle, encode_token, parse_bundle
from vault.macaroon.caveats import Organization, Secrets, Vaults
from vault.store.tokens import DecodeCache

MACAROON = Path(__file__).resolve().parents[2] / "vault" / "macaroon"


def _token(*caveats: Caveat) -> Macaroon:
    return Macaroon.mint(b"\x00" * 8, "https://store.example", b"k" * 32, [Organization(7, 3), *caveats])


def test_a_cached_decode_is_the_same_token_and_reuses_its_parts() -> None:
    text = encode_token(_token(Vaults((("prod", 1),))))
    cache = DecodeCache()
    first, second = decode_token(text, cache), decode_token(text, cache)
    assert first.encode() == second.encode() == decode_token(text).encode()
    assert first.unverified_caveats == decode_token(text).unverified_caveats
    assert first.nonce is second.nonce
    assert all(a is b for a, b in zip(first.unverified_caveats, second.unverified_caveats, strict=True))
    bundle = parse_bundle(encode_bundle([first, first]), cache)
    assert bundle.tokens[0].nonce is first.nonce


def test_without_a_cache_nothing_is_kept() -> None:
    text = encode_token(_token())
    assert decode_token(text).nonce is not decode_token(text).nonce


def test_the_cache_is_bounded_in_entries_and_entry_size() -> None:
    cache = DecodeCache(max_entries=2, max_bytes=64)
    tokens = [_token(Vaults(((f"v{i}", 1),))) for i in range(3)]
    decoded = [decode_token(encode_token(t), cache) for t in tokens]
    # Three different nonces through a two-entry cache: the oldest went first, the newest stayed.
    assert decode_token(encode_token(tokens[0]), cache).nonce is not decoded[0].nonce
    assert decode_token(encode_token(tokens[2]), cache).nonce is decoded[2].nonce
    big = _token(Secrets((("x" * 100, 1),)))
    once, again = decode_token(encode_token(big), cache), decode_token(encode_token(big), cache)
    assert once.unverified_caveats[1] is not again.unverified_caveats[1]  # over max_bytes: not kept


def test_the_token_core_keeps_no_mutable_module_state() -> None:
    """No module of vault/macaroon/ binds a name at module level to a dict, list or set it could fill at run time.

    The caveat registries (filled once, at import, by the caveat classes' definitions) and a constant table are
    the exceptions.
    """
    registries = {("caveat.py", "_BY_TYPE"), ("caveat.py", "_BY_NAME"), ("access.py", "_BY_LETTER")}
    found = []
    for path in sorted(MACAROON.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            target, value = None, None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign):
                target, value = node.target, node.value
            if not isinstance(target, ast.Name) or value is None or target.id == "__all__":
                continue
            mutable = isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp) or (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id in {"dict", "list", "set", "OrderedDict", "defaultdict"}
            )
            if mutable and (path.name, target.id) not in registries:
                found.append(f"{path.name}: {target.id}")
    assert found == []
