"""The cvault client: attenuate-on-use store calls, discharge fetching and caching, retries.

Async first (:class:`Client`), with a blocking twin (:class:`SyncClient`); both
can be set up from the same ``CVAULT_*`` variables ``cvault`` reads
(``Client.from_env()``). Store calls return the typed values of
:mod:`vault.client.models`. Errors are :mod:`vault.errors` exceptions carrying
the server's code and message; a service that cannot be reached is
:class:`vault.errors.ConnectionFailed`. See docs/client.md.

The names below are the public API; the submodules' other names (the
transports, the discharge cache, the narrowing helpers) are internals.
"""

from .authority import AuthorityClient
from .client import Client, TokenCache
from .credentials import Credentials, TokenBundle
from .environment import ClientSettings, load_settings
from .http import RetryPolicy
from .models import (
    BatchRead,
    MintedToken,
    Promoted,
    Secret,
    SecretMetadata,
    SecretPage,
    SecretSummary,
    SecretValue,
    Vault,
    Version,
    Written,
)
from .store import StoreClient
from .sync import SyncAuthority, SyncClient, SyncStore

__all__ = [
    "AuthorityClient",
    "BatchRead",
    "Client",
    "ClientSettings",
    "Credentials",
    "MintedToken",
    "Promoted",
    "RetryPolicy",
    "Secret",
    "SecretMetadata",
    "SecretPage",
    "SecretSummary",
    "SecretValue",
    "StoreClient",
    "SyncAuthority",
    "SyncClient",
    "SyncStore",
    "TokenBundle",
    "TokenCache",
    "Vault",
    "Version",
    "Written",
    "load_settings",
]
