"""The LiveKit RoomService operations cast-gatekeeper needs, behind a small interface.

Metadata updates are serialised per room inside one process; across processes LiveKit offers
no compare-and-set, so writers re-read right before each write to keep the window small.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from livekit import api

from cast_core import room_metadata

log = logging.getLogger(__name__)


class LiveKitError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code  # the Twirp code, or "unreachable": a bounded metrics label


class LiveKitUnavailable(LiveKitError):
    """LiveKit could not be reached or failed; callers answer 503 or retry."""

    def __init__(self, message: str, code: str = "unavailable") -> None:
        super().__init__(message, code)


class LiveKitRejected(LiveKitError):
    """LiveKit refused the request (invalid argument, permission): retrying will not help."""

    def __init__(self, message: str, code: str = "rejected") -> None:
        super().__init__(message, code)


@dataclass(frozen=True)
class Participant:
    identity: str
    attributes: dict[str, str] = field(default_factory=dict)


MetadataChange = Callable[[dict[str, Any]], dict[str, Any]]


class RoomAdmin(Protocol):
    async def room_metadata(self, room: str) -> dict[str, Any] | None:
        """The room's parsed metadata, or None when the room does not exist."""
        ...

    async def change_metadata(
        self, room: str, change: MetadataChange, *, create: bool
    ) -> dict[str, Any] | None:
        """Apply `change` to the room's metadata (writes only if it changed). When the room is
        missing it is created if `create`, else nothing happens and None is returned."""
        ...

    async def participants(self, room: str) -> list[Participant]: ...

    async def remove_participant(self, room: str, identity: str) -> None:
        """Disconnect a participant; one already gone counts as done."""
        ...

    async def aclose(self) -> None: ...


def http_url(livekit_url: str) -> str:
    """RoomService speaks HTTP; clients get the ws(s) form."""
    if livekit_url.startswith("wss://"):
        return "https://" + livekit_url[len("wss://") :]
    if livekit_url.startswith("ws://"):
        return "http://" + livekit_url[len("ws://") :]
    return livekit_url


def ws_url(livekit_url: str) -> str:
    if livekit_url.startswith("https://"):
        return "wss://" + livekit_url[len("https://") :]
    if livekit_url.startswith("http://"):
        return "ws://" + livekit_url[len("http://") :]
    return livekit_url


class RoomLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, room: str) -> asyncio.Lock:
        lock = self._locks.get(room)
        if lock is None:
            lock = self._locks[room] = asyncio.Lock()
        return lock


class LiveKitRoomAdmin:
    def __init__(self, url: str, api_key: str, api_secret: str, timeout: float = 5.0) -> None:
        self._url = http_url(url)
        self._key = api_key
        self._secret = api_secret
        self._timeout = timeout
        self._client: api.LiveKitAPI | None = None
        self._locks = RoomLocks()

    def _api(self) -> api.LiveKitAPI:
        # Created lazily: LiveKitAPI binds an aiohttp session to the running loop.
        if self._client is None:
            self._client = api.LiveKitAPI(
                self._url,
                self._key,
                self._secret,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except api.TwirpError as exc:
            if exc.code in (
                "invalid_argument",
                "permission_denied",
                "unauthenticated",
                "malformed",
            ):
                raise LiveKitRejected(f"LiveKit refused {what}: {exc.code}", exc.code) from None
            raise LiveKitUnavailable(f"LiveKit failed {what}: {exc.code}", exc.code) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise LiveKitUnavailable(
                f"LiveKit unreachable during {what}: {type(exc).__name__}"
            ) from None

    async def _room(self, room: str) -> Any | None:
        response = await self._call(
            "list_rooms", self._api().room.list_rooms(api.ListRoomsRequest(names=[room]))
        )
        for candidate in response.rooms:
            if candidate.name == room:
                return candidate
        return None

    async def room_metadata(self, room: str) -> dict[str, Any] | None:
        found = await self._room(room)
        return None if found is None else room_metadata.parse(found.metadata)

    async def change_metadata(
        self, room: str, change: MetadataChange, *, create: bool
    ) -> dict[str, Any] | None:
        async with self._locks(room):
            found = await self._room(room)
            if found is None:
                if not create:
                    return None
                found = await self._call(
                    "create_room", self._api().room.create_room(api.CreateRoomRequest(name=room))
                )
            current = room_metadata.parse(found.metadata)
            wanted = change(current)
            if wanted == current and found.metadata:
                return current
            await self._call(
                "update_room_metadata",
                self._api().room.update_room_metadata(
                    api.UpdateRoomMetadataRequest(room=room, metadata=room_metadata.dump(wanted))
                ),
            )
            return wanted

    async def participants(self, room: str) -> list[Participant]:
        try:
            response = await self._api().room.list_participants(
                api.ListParticipantsRequest(room=room)
            )
        except api.TwirpError as exc:
            if exc.code == "not_found":
                return []
            raise LiveKitUnavailable(
                f"LiveKit failed list_participants: {exc.code}", exc.code
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise LiveKitUnavailable(
                f"LiveKit unreachable: {type(exc).__name__}", "unreachable"
            ) from None
        return [
            Participant(identity=p.identity, attributes=dict(p.attributes))
            for p in response.participants
        ]

    async def remove_participant(self, room: str, identity: str) -> None:
        try:
            await self._api().room.remove_participant(
                api.RoomParticipantIdentity(room=room, identity=identity)
            )
        except api.TwirpError as exc:
            if exc.code == "not_found":
                return
            raise LiveKitUnavailable(
                f"LiveKit failed remove_participant: {exc.code}", exc.code
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise LiveKitUnavailable(
                f"LiveKit unreachable: {type(exc).__name__}", "unreachable"
            ) from None
