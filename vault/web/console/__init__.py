"""``cvault audit console``: a read-only web console over the store's audit log (docs/audit-console.md)."""

from __future__ import annotations

from .app import create_console_app
from .serve import serve_console

__all__ = ["create_console_app", "serve_console"]
