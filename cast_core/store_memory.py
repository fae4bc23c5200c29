"""In-memory StreamLinkStore for the fast tier. Mirrors the apiserver's observable rules:
name uniqueness, resourceVersion conflicts, generation bumps and the CRD's CEL rules."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

from cast_core.clock import Clock, SystemClock
from cast_core.model import StreamLink, StreamLinkDraft, format_time
from cast_core.store import AlreadyExists, Conflict, Invalid, NotFound, StoreUnavailable

MUTABLE_SPEC_FIELDS = frozenset({"presenters", "revoked", "revocationReason"})


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_spec_transition(old: dict[str, Any], new: dict[str, Any]) -> None:
    """The CRD's CEL rules, so both stores refuse the same changes."""
    for key in set(old) | set(new):
        if key not in MUTABLE_SPEC_FIELDS and old.get(key) != new.get(key):
            raise Invalid(f"spec.{key} is immutable")
    if old.get("revoked") and not new.get("revoked"):
        raise Invalid("spec.revoked may not go back to false")


class MemoryStreamLinkStore:
    def __init__(self, namespace: str = "default", clock: Clock | None = None) -> None:
        self.namespace = namespace
        self._clock = clock or SystemClock()
        self._objects: dict[str, dict[str, Any]] = {}
        self._parsed: dict[str, StreamLink] = {}  # like the Kubernetes store's cache
        self._rv = 0
        self.unavailable = False  # flip to simulate an unreachable apiserver for writes
        self.backend_reads = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def ready(self) -> bool:
        return True

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    async def _round_trip(self) -> None:
        # Yield like a network call would, so concurrent writers interleave as they do against
        # the apiserver (and resourceVersion conflicts really happen in the fast tier).
        await asyncio.sleep(0)
        if self.unavailable:
            raise StoreUnavailable("store unavailable")

    def _link(self, name: str) -> StreamLink:
        body = self._objects[name]
        link = self._parsed.get(name)
        if link is None or link.resource_version != body["metadata"]["resourceVersion"]:
            link = self._parsed[name] = StreamLink.from_body(copy.deepcopy(body))
        return link

    async def get(self, name: str, *, fresh: bool = False) -> StreamLink | None:
        return self._link(name) if name in self._objects else None

    def by_place(self, place_id: str) -> list[StreamLink]:
        return [
            self._link(n) for n, b in self._objects.items() if b["spec"]["place"]["id"] == place_id
        ]

    def by_room(self, room: str) -> list[StreamLink]:
        return [self._link(n) for n, b in self._objects.items() if b["spec"]["room"] == room]

    async def create(self, draft: StreamLinkDraft) -> StreamLink:
        await self._round_trip()
        if draft.name in self._objects:
            raise AlreadyExists(draft.name)
        body = draft.to_body(self.namespace)
        body["metadata"].update(
            uid=str(uuid.uuid4()),
            resourceVersion=self._next_rv(),
            generation=1,
            creationTimestamp=format_time(self._clock.now()),
        )
        self._objects[draft.name] = body
        return StreamLink.from_body(copy.deepcopy(body))

    async def patch_spec(
        self, name: str, spec_patch: dict[str, Any], *, resource_version: str | None = None
    ) -> StreamLink:
        await self._round_trip()
        body = self._objects.get(name)
        if body is None:
            raise NotFound(name)
        if resource_version is not None and resource_version != body["metadata"]["resourceVersion"]:
            raise Conflict(name)
        new_spec = _merge(body["spec"], spec_patch)
        check_spec_transition(body["spec"], new_spec)
        if new_spec != body["spec"]:
            body = copy.deepcopy(body)
            body["spec"] = new_spec
            body["metadata"]["generation"] += 1
            body["metadata"]["resourceVersion"] = self._next_rv()
            self._objects[name] = body
        return StreamLink.from_body(copy.deepcopy(body))

    # Test helpers: what the operator or kubectl would do.
    def put_status(self, name: str, status: dict[str, Any]) -> None:
        self._objects[name]["status"] = copy.deepcopy(status)
        self._objects[name]["metadata"]["resourceVersion"] = self._next_rv()

    def delete(self, name: str) -> None:
        self._objects.pop(name, None)
        self._parsed.pop(name, None)

    def raw(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self._objects[name])
