"""The console's app factory: templates, routes, the guard, and the pages' error renderer."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web

from vault.audit.query import AuditQueries
from vault.client import Client
from vault.storage.audit import PgAuditRepository
from vault.storage.pool import close_pool, create_pool

from ..common import RENDERER_KEY, middlewares, origin
from . import handlers
from .keys import REVIEWER_KEY, TEMPLATES_KEY
from .reviewer import Reviewer
from .security import guard_middleware, set_security_headers

__all__ = ["create_console_app", "render_error"]


def _when(value: Any) -> str:
    """An event's ``at`` (ISO 8601) as ``2026-01-31 10:00:00.123`` (UTC), or a datetime likewise."""
    if not value:
        return ""
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vault.web.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    return env


def render_error(request: web.Request, status: int, code: str, message: str) -> web.StreamResponse:
    env = request.app[TEMPLATES_KEY]
    page = env.get_template("error.html").render(
        title=f"Error {status}",
        path=request.path,
        status=status,
        code=code,
        message=message,
        request_id=origin(request).request_id,
    )
    return web.Response(status=status, text=page, content_type="text/html", charset="utf-8")


def create_console_app(
    client: Client, *, database_url: str | None = None, allow_hosts: Sequence[str] = ()
) -> web.Application:
    """The console reading through ``client`` (the reviewer's credentials); chain checks on ``database_url``."""
    app = web.Application(middlewares=[*middlewares(), guard_middleware(allow_hosts, render_error)])
    app[RENDERER_KEY] = render_error
    app[TEMPLATES_KEY] = templates()
    app.on_response_prepare.append(set_security_headers)

    async def reviewer_ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(database_url, min_size=1, max_size=2) if database_url else None
        app[REVIEWER_KEY] = Reviewer(client, AuditQueries(PgAuditRepository(pool, "store")) if pool else None)
        try:
            yield
        finally:
            if pool is not None:
                await close_pool(pool)

    app.cleanup_ctx.append(reviewer_ctx)
    css = resources.files("vault.web.console").joinpath("static/console.css").read_text(encoding="utf-8")
    handlers.add_routes(app, css)
    return app
