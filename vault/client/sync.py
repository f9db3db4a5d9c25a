"""A thin synchronous wrapper: the async :class:`~vault.client.client.Client` on a private event loop.

The loop runs in a daemon thread so the client's background discharge refresh
keeps working between calls. Every coroutine method of ``client.store`` and
``client.authority`` is available with the same name and arguments::

    with SyncClient(store_url=..., authority_url=..., credentials=...) as c:
        value = c.store.read_secret("prod", "db/url")["value"]
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from .client import Client

__all__ = ["SyncClient"]

T = TypeVar("T")


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="cvault-client", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _SyncProxy:
    """Blocking versions of an async object's coroutine methods."""

    def __init__(self, target: object, loop: _Loop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            raise AttributeError(f"{name} is not a client call")

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run(attr(*args, **kwargs))

        return call


class SyncClient:
    def __init__(self, **kwargs: Any) -> None:
        self._loop = _Loop()

        async def build() -> Client:
            # aiohttp sessions belong to the loop they are created on.
            return Client(**kwargs)

        self.client = self._loop.run(build())
        self.store = _SyncProxy(self.client.store, self._loop)
        self.authority = _SyncProxy(self.client.authority, self._loop)

    def close(self) -> None:
        try:
            self._loop.run(self.client.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
