"""Token verification throughput, against pymacaroons and the bare HMAC-chain floor, in one run.

Run: ``.venv/bin/python bench/token_verify.py [--seconds 0.5]``

For N first-party caveats (1, 5, 20) it measures, per verification:

* ``cvault parse+verify``: decode the wire bytes and ``verify()`` (chain, tail compare, caveat sorting);
* ``cvault verify (parsed)``: ``verify()`` of an already decoded token;
* ``pymacaroons parse+verify``: deserialize and verify a pymacaroons token with N exact first-party caveats;
* ``HMAC floor``: ``hmac.digest`` N+1 times in a loop over the same byte strings (no parsing, no checks);

and a token with one 3P caveat plus its bound discharge. Ratios are printed against the named baselines.
Cases are timed round-robin and each keeps its fastest round (see ``rates``).
"""

from __future__ import annotations

import argparse
import hmac
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pymacaroons

from tests.support.tokenkit import Setup
from vault.macaroon import Macaroon, decode, verify
from vault.macaroon import caveats as cv
from vault.macaroon.access import ALL

NOW = int(time.time())


def calibrate(fn: Callable[[], object], seconds: float) -> int:
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 > seconds:
            return n
        n *= 2


def rates(cases: dict[str, Callable[[], object]], seconds: float, rounds: int = 7) -> dict[str, float]:
    """Calls per second for every case. The machine is shared and noisy, so the cases are
    timed round-robin, ``rounds`` times, and each keeps its fastest round: noise only ever
    slows a round down, and interleaving exposes every case to the same conditions."""
    batch = {name: calibrate(fn, seconds / rounds) for name, fn in cases.items()}
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):
        for name, fn in cases.items():
            n = batch[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / n)
    return {name: 1 / t for name, t in best.items()}


def cvault_token(n: int, key: bytes) -> Macaroon:
    caveats: list[cv.Caveat] = [cv.Organization(1, ALL)]
    caveats += [cv.Vaults(((f"vault{i}", ALL),)) for i in range(n - 1)]
    return Macaroon.mint(b"kid", "https://store.test", key, caveats)


def pymacaroons_case(n: int, key: bytes) -> tuple[str, Callable[[], object]]:
    m = pymacaroons.Macaroon(location="https://store.test", identifier="kid", key=key)
    for i in range(n):
        m.add_first_party_caveat(f"vault{i} = rwcdCa")
    blob = m.serialize()
    predicates = {f"vault{i} = rwcdCa" for i in range(n)}

    def run() -> object:
        v = pymacaroons.Verifier()
        v.satisfy_general(predicates.__contains__)
        return v.verify(pymacaroons.Macaroon.deserialize(blob), key)

    return blob, run


def floor_case(token: Macaroon, key: bytes) -> Callable[[], object]:
    msgs = [token.nonce.raw, *token.caveat_bytes]

    def run() -> object:
        t = key
        for m in msgs:
            t = hmac.digest(t, m, "sha256")
        return t

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="approximate time spent on each case")
    args = ap.parse_args()
    key = os.urandom(32)
    cases: dict[str, Callable[[], object]] = {}
    for n in (1, 5, 20):
        token = cvault_token(n, key)
        raw = token.encode()
        cases[f"pv{n}"] = lambda raw=raw: verify(decode(raw), key, now=NOW)
        cases[f"v{n}"] = lambda token=token: verify(token, key, now=NOW)
        cases[f"pym{n}"] = pymacaroons_case(n, key)[1]
        cases[f"floor{n}"] = floor_case(token, key)
    s = Setup()
    tp = s.token(cv.Organization(1, ALL))
    d = s.discharge(tp, window=(NOW - 10, NOW + 600))
    tp_raw, d_raw = tp.encode(), d.encode()
    cases["tp_pv"] = lambda: verify(decode(tp_raw), s.root_key, [decode(d_raw)], now=NOW)
    cases["tp_v"] = lambda: verify(tp, s.root_key, [d], now=NOW)
    r = rates(cases, args.seconds)
    rows = [(n, r[f"pv{n}"], r[f"v{n}"], r[f"pym{n}"], r[f"floor{n}"]) for n in (1, 5, 20)]
    tp_parse, tp_parsed = r["tp_pv"], r["tp_v"]

    print(f"Python {sys.version.split()[0]}; rates are verifications per second (higher is better)\n")
    head = (
        f"{'caveats':>7} | {'cvault parse+verify':>19} | {'cvault verify(parsed)':>21} | "
        f"{'pymacaroons p+v':>15} | {'HMAC floor':>10} | {'vs pymacaroons':>14} | {'parsed/floor':>12}"
    )
    print(head)
    print("-" * len(head))
    for n, pv, v, pym, floor in rows:
        print(
            f"{n:>7} | {pv:>19,.0f} | {v:>21,.0f} | {pym:>15,.0f} | {floor:>10,.0f} | "
            f"{pv / pym:>13.2f}x | {floor / v:>11.2f}x"
        )
    print()
    print(f"one 3P caveat + bound discharge: parse+verify {tp_parse:,.0f}/s, verify(parsed) {tp_parsed:,.0f}/s")
    print()
    print("'vs pymacaroons' = cvault parse+verify / pymacaroons parse+verify (target >= 3x at 5 and 20 caveats)")
    print("'parsed/floor'   = time of cvault verify(parsed) / time of bare HMAC chain (target <= 2x)")


if __name__ == "__main__":
    main()
