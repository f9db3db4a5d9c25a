"""The cvault client: attenuate-on-use store calls, discharge fetching and caching, retries.

Async first (:class:`Client`), with a thin blocking wrapper (:class:`SyncClient`).
Errors are :mod:`vault.errors` exceptions carrying the server's code and message;
a service that cannot be reached is :class:`vault.errors.ConnectionFailed`.
"""

from .client import DEFAULT_WINDOW, Client, TokenCache
from .credentials import Credentials, TokenBundle, organization_of
from .discharges import Discharges, discharge_expiry
from .http import HTTP, RetryPolicy
from .store import narrowing
from .sync import SyncClient

__all__ = [
    "DEFAULT_WINDOW",
    "HTTP",
    "Client",
    "Credentials",
    "Discharges",
    "RetryPolicy",
    "SyncClient",
    "TokenBundle",
    "TokenCache",
    "discharge_expiry",
    "narrowing",
    "organization_of",
]
