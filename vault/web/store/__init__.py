"""The store's web app (``cvault serve store``)."""

from .app import create_store_app

__all__ = ["create_store_app"]
