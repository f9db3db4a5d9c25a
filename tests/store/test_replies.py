"""The secret read's reply (encoded by msgspec from :class:`SecretRead`) is the JSON the client reads."""

from __future__ import annotations

import json
import time

from hypothesis import given
from hypothesis import strategies as st

from vault.store.secrets import Revealed
from vault.web.contract import reply
from vault.web.store.handlers import secret_read


@given(
    name=st.text(),
    version=st.integers(1, 2**31 - 1),
    stage=st.none() | st.sampled_from(["current", "pending", "previous"]) | st.text(),
    created=st.integers(0, 2**33),
    value=st.text(),
)
def test_the_read_reply_holds_every_field(name: str, version: int, stage: str | None, created: int, value: str) -> None:
    r = Revealed(name, version, stage, created, value)
    expected = {
        "name": name,
        "version": version,
        "value": value,
        "stage": stage,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
    }
    body = reply(secret_read(r)).body
    assert isinstance(body, bytes)
    assert json.loads(body) == expected
    assert list(json.loads(body)) == list(expected)  # the field order json.dumps of the old reply had


def test_revealed_repr_leaves_the_value_out() -> None:
    assert "s3cret" not in repr(Revealed("db/url", 1, "current", 0, "s3cret"))
