"""Typed keys of the console's application state."""

from __future__ import annotations

import jinja2
from aiohttp import web

from .reviewer import Reviewer

__all__ = ["REVIEWER_KEY", "TEMPLATES_KEY"]

REVIEWER_KEY = web.AppKey("console_reviewer", Reviewer)
TEMPLATES_KEY = web.AppKey("console_templates", jinja2.Environment)
