"""``cvault tokens``: offline token commands (placeholder)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("tokens", help="inspect and attenuate tokens")
    parser.set_defaults(func=lambda args: 0)
