"""``cvault serve authority|store``: run one service in the foreground."""

from __future__ import annotations

import argparse
from typing import Any

from vault.web.runner import SERVICES, serve

from .options import add_config_option, config_from_args

__all__ = ["register"]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("serve", help="run the authority or the store")
    parser.add_argument("service", choices=SERVICES, help="which service to run")
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="address to listen on (default: CVAULT_AUTHORITY_LISTEN / _STORE_LISTEN)"
    )
    add_config_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    serve(args.service, config_from_args(args), args.listen)
    return 0
