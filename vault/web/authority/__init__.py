"""The authority's web app (``cvault serve authority``)."""

from .app import create_authority_app

__all__ = ["create_authority_app"]
