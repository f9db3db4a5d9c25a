"""The cvault client: attenuate-on-use store calls, discharge fetching and caching, retries.

Async first (:class:`Client`), with a blocking twin (:class:`SyncClient`); both
can be set up from the same ``CVAULT_*`` variables ``cvault`` reads
(``Client.from_env()``). Calls return the typed values of
:mod:`vault.client.models` (the store's) and :mod:`vault.client.authority_models`.
Errors are :mod:`vault.errors` exceptions carrying
the server's code and message; a service that cannot be reached is
:class:`vault.errors.ConnectionFailed`. See docs/client.md.

The names below are the public API; the submodules' other names (the
transports, the discharge cache, the narrowing helpers) are internals. Each is
imported from its submodule on first use, so a program (or ``cvault``) pays
only for the parts it touches: the blocking client's event loop thread, for
one, is not what a one-shot command wants to import.
"""

import importlib
import typing

if typing.TYPE_CHECKING:
    from .authority import AuthorityClient
    from .authority_models import (
        Accepted,
        Account,
        AuthorityKeys,
        DischargerKey,
        Invitation,
        Member,
        Membership,
        Organization,
        PermissionToken,
        Revocation,
        Revocations,
        RoleChanged,
        ServiceToken,
        Session,
        TokenInfo,
    )
    from .client import Client, TokenCache
    from .credentials import Credentials, TokenBundle
    from .environment import ClientSettings, load_settings
    from .http import RetryPolicy
    from .models import (
        BatchRead,
        CurrentVersions,
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
    "Accepted",
    "Account",
    "AuthorityClient",
    "AuthorityKeys",
    "BatchRead",
    "Client",
    "ClientSettings",
    "Credentials",
    "CurrentVersions",
    "DischargerKey",
    "Invitation",
    "Member",
    "Membership",
    "MintedToken",
    "Organization",
    "PermissionToken",
    "Promoted",
    "RetryPolicy",
    "Revocation",
    "Revocations",
    "RoleChanged",
    "Secret",
    "SecretMetadata",
    "SecretPage",
    "SecretSummary",
    "SecretValue",
    "ServiceToken",
    "Session",
    "StoreClient",
    "SyncAuthority",
    "SyncClient",
    "SyncStore",
    "TokenBundle",
    "TokenCache",
    "TokenInfo",
    "Vault",
    "Version",
    "Written",
    "load_settings",
]

_HOME = {
    "Accepted": "authority_models",
    "Account": "authority_models",
    "AuthorityClient": "authority",
    "AuthorityKeys": "authority_models",
    "BatchRead": "models",
    "Client": "client",
    "ClientSettings": "environment",
    "Credentials": "credentials",
    "CurrentVersions": "models",
    "DischargerKey": "authority_models",
    "Invitation": "authority_models",
    "Member": "authority_models",
    "Membership": "authority_models",
    "MintedToken": "models",
    "Organization": "authority_models",
    "PermissionToken": "authority_models",
    "Promoted": "models",
    "RetryPolicy": "http",
    "Revocation": "authority_models",
    "Revocations": "authority_models",
    "RoleChanged": "authority_models",
    "Secret": "models",
    "SecretMetadata": "models",
    "SecretPage": "models",
    "SecretSummary": "models",
    "SecretValue": "models",
    "ServiceToken": "authority_models",
    "Session": "authority_models",
    "StoreClient": "store",
    "SyncAuthority": "sync",
    "SyncClient": "sync",
    "SyncStore": "sync",
    "TokenBundle": "credentials",
    "TokenCache": "client",
    "TokenInfo": "authority_models",
    "Vault": "models",
    "Version": "models",
    "Written": "models",
    "load_settings": "environment",
}


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
