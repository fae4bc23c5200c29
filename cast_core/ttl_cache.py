"""A small bounded LRU cache with a time-to-live and in-flight de-duplication.

Used in front of slow upstreams (Places, Lambdas, Worlds): entries live `ttl` seconds, at most
`max_entries` are kept (least recently used go first), and concurrent loads of one key share a
single upstream call. Failures are never cached, so the next caller retries.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self,
        *,
        ttl: float,
        max_entries: int,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or max_entries <= 0:
            raise ValueError("ttl and max_entries must be positive")
        self._ttl = ttl
        self._max = max_entries
        self._now = now
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._inflight: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: K) -> tuple[V] | None:
        """A fresh entry boxed in a 1-tuple (values may be None), else None; drops expired ones."""
        item = self._entries.get(key)
        if item is None:
            return None
        expires, value = item
        if self._now() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return (value,)

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self._now() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        hit = self.lookup(key)
        if hit is not None:
            return hit[0]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(key, load))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._settled(key, t))
        # shield: one impatient caller being cancelled must not cancel the shared load.
        return await asyncio.shield(task)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        value = await load()
        self.put(key, value)  # before the in-flight slot is freed, so no caller misses both
        return value

    def _settled(self, key: K, task: asyncio.Task[V]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: waiters may all have gone away
