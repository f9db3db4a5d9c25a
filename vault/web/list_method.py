"""Serving Vault's ``LIST`` method: aiohttp's pure-Python HTTP parser, chosen with its public switch.

aiohttp parses requests with llhttp, which knows a fixed set of methods and answers
``400 Invalid method encountered`` to ``LIST``; its pure-Python parser accepts any
method token. The only supported way to choose it is ``AIOHTTP_NO_EXTENSIONS=1``
in the environment when aiohttp is first imported, for the whole process: the
server commands set it (:data:`vault.cli.main.SERVING`), the test suite too
(``tests/conftest.py``). Measured on the secret read, the pure-Python parser costs
within noise (docs/vault-compat.md, "The LIST method"). In a process that imported
aiohttp without it (a library user serving the app), ``LIST`` is a 400 and the
Vault API still answers ``GET ...?list=true``.

``VaultAppRunner`` (used by ``cvault serve`` and the test harness) serves an app with
cvault's header limits and parser errors answered as JSON (:mod:`vault.web.protocol`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .protocol import SERVER_LIMITS, CvaultRequestHandler

__all__ = ["CvaultServer", "VaultAppRunner"]


class CvaultServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return CvaultRequestHandler(self, loop=self._loop, **self._kwargs)


class VaultAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer parser errors as cvault does.

    Header limits are cvault's (:data:`vault.web.protocol.SERVER_LIMITS`) unless the caller sets them.
    """

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        super().__init__(app, **{**SERVER_LIMITS, **kwargs})

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The app builds its Server itself (with its private request factory);
        # only how a connection's handler is made changes, and Server has no slots.
        server.__class__ = CvaultServer
        return server
