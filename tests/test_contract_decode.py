"""The contract's body decoder (:func:`vault.web.contract.decode_json`): integers as JSON Schema counts them."""

from __future__ import annotations

from typing import Annotated

import pytest
from msgspec import Meta

from vault.errors import BadRequest
from vault.web.contract import decode_json, decode_params
from vault.web.models import Model


class Body(Model):
    versions: list[Annotated[int, Meta(ge=1)]]
    ttl: int | None = None
    ratio: float = 0.5
    nested: dict[str, list[int]] | None = None


def test_whole_number_floats_are_integers() -> None:
    raw = b'{"versions": [2.0, 3, 1e2], "ttl": 60.0, "nested": {"a": [1.0]}}'
    body = decode_json(raw, Body)
    assert body.versions == [2, 3, 100] and all(type(v) is int for v in body.versions)
    assert body.ttl == 60 and type(body.ttl) is int
    assert body.nested == {"a": [1]}


def test_a_float_field_keeps_taking_floats_and_ints() -> None:
    assert decode_json(b'{"versions": [1], "ratio": 2}', Body).ratio == 2.0
    assert decode_json(b'{"versions": [1.0], "ratio": 2.5}', Body).ratio == 2.5


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"versions": [2.5]}', "Expected `int`, got `float` - at `$.versions[0]`"),
        (b'{"versions": ["5"]}', "Expected `int`, got `str` - at `$.versions[0]`"),
        (b'{"versions": [1], "ttl": "60"}', "Expected `int | null`, got `str` - at `$.ttl`"),
        (b'{"versions": [0.0]}', "Expected `int` >= 1 - at `$.versions[0]`"),
        (b'{"versions": [1.0], "ttl": 1.5}', "Expected `int | null`, got `float` - at `$.ttl`"),
    ],
)
def test_what_is_no_integer_stays_refused(raw: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        decode_json(raw, Body)
    assert refused.value.message == f"request body: {message}"


def test_a_body_malformed_after_the_refused_field_is_not_json() -> None:
    with pytest.raises(BadRequest, match="not valid JSON"):
        decode_json(b'{"versions": [2.0], "ttl": ', Body)


class Write(Model):
    data: dict[str, object]
    cas: int | None = None


def test_free_form_values_keep_their_floats_when_an_integer_field_is_written_as_one() -> None:
    # A Vault secret's data is stored as sent, however another field of the body was spelled.
    body = decode_json(b'{"data": {"p": 2.0, "q": [1.0]}, "cas": 1.0}', Write)
    assert body.cas == 1 and type(body.cas) is int
    assert body.data == {"p": 2.0, "q": [1.0]} and type(body.data["p"]) is float and type(body.data["q"][0]) is float  # type: ignore[index]


class Params(Model):
    version: Annotated[int, Meta(ge=0)] | None = None
    name: str = ""


@pytest.mark.parametrize("text", ["1e3", "7.0", " 7", "0x10", "1_000", "", "+"])
def test_integer_parameters_are_decimal_digits(text: str) -> None:
    with pytest.raises(BadRequest, match="version"):
        decode_params({"version": text, "name": "1e3"}, Params)


def test_integer_parameters_read_as_int() -> None:
    assert decode_params({"version": "12", "name": "7.0"}, Params) == Params(version=12, name="7.0")
