"""Serving an app the way every cvault server does, through aiohttp's public API only.

:class:`VaultAppRunner` (used by ``cvault serve`` through :mod:`vault.web.connections`, and by
the test harness) serves an app with cvault's header limits and its parser errors answered as
JSON (:mod:`vault.web.protocol`), and with aiohttp's access log off (it prints query strings;
cvault's request middleware logs paths only).

aiohttp has no public way to choose the connection handler of the ``web.Server`` that
``web.AppRunner`` builds for an app (its old hook, ``AppRunner._make_server``, is private).
So the runner is a ``web.ServerRunner`` serving a :class:`CvaultServer`, a ``web.Server``
(documented as the protocol factory handed to ``loop.create_server``, so making each
connection's handler is its public role) that makes :class:`~vault.web.protocol.CvaultRequestHandler`.
A ``web.AppRunner`` only starts the app: the Server it builds (its public ``server``) hands
over the app's request handler and request factory (public attributes of ``web.Server``), so
routing, middleware and signals stay aiohttp's own. Stopping calls the app's ``shutdown()``
and ``cleanup()`` at the points ``AppRunner.cleanup`` does. ``tests/test_aiohttp_public_api.py``
fails if ``vault/`` reaches a private aiohttp name again.

Vault's ``LIST`` method: aiohttp parses requests with llhttp, which knows a fixed set of
methods and answers ``400 Invalid method encountered`` to ``LIST``; its pure-Python parser
accepts any method token. The only supported way to choose it is ``AIOHTTP_NO_EXTENSIONS=1``
in the environment when aiohttp is first imported, for the whole process: the server commands
set it (:data:`vault.cli.main.SERVING`), the test suite too (``tests/__init__.py``). Measured on
the secret read, the pure-Python parser costs within noise (docs/vault-compat.md, "The LIST
method"). In a process that imported aiohttp without it (a library user serving the app),
``LIST`` is a 400 and the Vault API still answers ``GET ...?list=true``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .protocol import SERVER_LIMITS, CvaultRequestHandler

__all__ = ["CvaultServer", "VaultAppRunner"]

SERVING_DEFAULTS: dict[str, Any] = {**SERVER_LIMITS, "access_log": None}
"""What :class:`VaultAppRunner` gives each connection's handler unless the caller says otherwise."""


async def _not_started(request: web.BaseRequest) -> web.StreamResponse:
    # Never reached: a site cannot start before setup() hands over the app's handler.
    raise RuntimeError("VaultAppRunner.setup() has not run")


class CvaultServer(web.Server):
    """A ``web.Server`` whose connections are handled by ``handler_class``, made with ``options``."""

    def __init__(
        self,
        handler: Any,
        *,
        handler_class: type[CvaultRequestHandler] = CvaultRequestHandler,
        handler_cancellation: bool = False,
        **options: Any,
    ) -> None:
        self.serving_loop = asyncio.get_running_loop()
        super().__init__(handler, handler_cancellation=handler_cancellation, loop=self.serving_loop, **options)
        self.handler_class = handler_class
        self.handler_options = options

    def __call__(self) -> web.RequestHandler:
        return self.handler_class(self, loop=self.serving_loop, **self.handler_options)

    def serve(self, built: web.Server) -> None:
        """Serve what ``built`` (the Server ``web.AppRunner`` made for an app) serves."""
        self.request_handler = built.request_handler
        self.request_factory = built.request_factory


class VaultAppRunner(web.ServerRunner):
    """Serves ``app`` on a :class:`CvaultServer`; ``options`` go to each connection's handler.

    Header limits are cvault's (:data:`vault.web.protocol.SERVER_LIMITS`) and aiohttp's access log
    is off unless the caller sets them. Made inside a running event loop (as ``web.Server`` is).
    """

    server_class: type[CvaultServer] = CvaultServer

    def __init__(
        self,
        app: web.Application,
        *,
        handle_signals: bool = False,
        shutdown_timeout: float = 60.0,
        **options: Any,
    ) -> None:
        self.app = app
        self.app_starter = web.AppRunner(app)
        self.cvault_server = self.server_class(_not_started, **{**SERVING_DEFAULTS, **options})
        super().__init__(self.cvault_server, handle_signals=handle_signals, shutdown_timeout=shutdown_timeout)

    async def setup(self) -> None:
        # Runs the app's startup signals and freezes it, then serves its handler on our Server.
        await self.app_starter.setup()
        built = self.app_starter.server
        assert built is not None
        self.cvault_server.serve(built)
        await super().setup()

    async def shutdown(self) -> None:
        # cleanup() calls this once the sites are closed and before it waits for open requests,
        # where AppRunner runs the app's on_shutdown (which lets long polls end early).
        await self.app.shutdown()

    async def cleanup(self) -> None:
        try:
            await super().cleanup()
        finally:
            await self.app.cleanup()
