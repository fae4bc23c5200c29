"""StreamLinkStore: where StreamLinks live. Kubernetes in production, memory in the fast tests.

Reads (`by_place`, `by_room`, `get` on a hit) come from an in-process view so hot routes never
wait on the apiserver; writes go to the backing store and raise the errors below.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, Protocol

from cast_core.model import StreamLink, StreamLinkDraft


class StoreError(Exception):
    """Base of the store's errors; messages never contain keys or tokens."""


class StoreUnavailable(StoreError):
    """The backing store could not be reached or answered 5xx."""


class AlreadyExists(StoreError):
    pass


class Conflict(StoreError):
    """The object changed since it was read (stale resourceVersion)."""


class NotFound(StoreError):
    pass


class Invalid(StoreError):
    """The backing store refused the object (schema or CEL rule)."""


class StreamLinkStore(Protocol):
    namespace: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def ready(self) -> bool: ...

    async def get(self, name: str, *, fresh: bool = False) -> StreamLink | None:
        """From the view; on a miss (or with fresh=True) one read from the backing store."""
        ...

    def by_place(self, place_id: str) -> list[StreamLink]: ...

    def by_room(self, room: str) -> list[StreamLink]: ...

    async def create(self, draft: StreamLinkDraft) -> StreamLink: ...

    async def patch_spec(
        self, name: str, spec_patch: dict[str, Any], *, resource_version: str | None = None
    ) -> StreamLink:
        """JSON merge patch of `spec`; with a resource_version it fails with Conflict if stale."""
        ...


async def update_spec(
    store: StreamLinkStore,
    name: str,
    change: Callable[[StreamLink], dict[str, Any] | None],
    *,
    attempts: int = 5,
) -> StreamLink:
    """Read-modify-write of one link's spec with optimistic concurrency.

    `change` returns the spec patch to apply, or None when nothing needs to change.
    """
    fresh = False
    for attempt in range(attempts):
        # After a conflict the cached view is the stale one: read the backing store.
        link = await store.get(name, fresh=fresh)
        if link is None:
            raise NotFound(name)
        patch = change(link)
        if patch is None:
            return link
        try:
            return await store.patch_spec(name, patch, resource_version=link.resource_version)
        except Conflict:
            fresh = True
            await asyncio.sleep(random.uniform(0, 0.05 * (attempt + 1)))  # noqa: S311 - jitter
    raise Conflict(f"StreamLink {name} kept changing; gave up after {attempts} attempts")
