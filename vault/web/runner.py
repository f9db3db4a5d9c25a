"""Running a service's app in the foreground (``cvault serve``): the one place that calls ``web.run_app``."""

from __future__ import annotations

import logging

from aiohttp import web

from vault.config import Config

__all__ = ["SERVICES", "serve"]

SERVICES = ("authority", "store")


def _app(service: str, config: Config) -> web.Application:
    # Imported here so serving one service does not import the other's code.
    if service == "authority":
        from .authority import create_authority_app

        return create_authority_app(config)
    if service == "store":
        from .store import create_store_app

        return create_store_app(config)
    raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")


def serve(service: str, config: Config, listen: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM on ``listen`` (``HOST:PORT``; default from the configuration)."""
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    address = listen or (config.authority_listen if service == "authority" else config.store_listen)
    host, _, port = address.rpartition(":")
    app = _app(service, config)
    # access_log=None: our own middleware writes one line per request, without query strings.
    web.run_app(app, host=host, port=int(port), access_log=None, print=None)
