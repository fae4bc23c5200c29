"""In-memory LiveKit RoomService for the fast tier (never used in production)."""

from __future__ import annotations

from typing import Any

from cast_core import room_metadata
from cast_core.livekit_rooms import LiveKitUnavailable, MetadataChange, Participant


class FakeRoomAdmin:
    def __init__(self) -> None:
        self.rooms: dict[str, str] = {}  # room -> raw metadata
        self.members: dict[str, dict[str, Participant]] = {}
        self.down = False
        self.calls: list[tuple[str, str]] = []

    def _check(self, what: str, room: str) -> None:
        self.calls.append((what, room))
        if self.down:
            raise LiveKitUnavailable(f"LiveKit unreachable during {what}")

    def join(self, room: str, identity: str, attributes: dict[str, str] | None = None) -> None:
        self.rooms.setdefault(room, "")
        self.members.setdefault(room, {})[identity] = Participant(identity, dict(attributes or {}))

    async def room_metadata(self, room: str) -> dict[str, Any] | None:
        self._check("room_metadata", room)
        if room not in self.rooms:
            return None
        return room_metadata.parse(self.rooms[room])

    async def change_metadata(
        self, room: str, change: MetadataChange, *, create: bool
    ) -> dict[str, Any] | None:
        self._check("change_metadata", room)
        if room not in self.rooms:
            if not create:
                return None
            self.rooms[room] = ""
        current = room_metadata.parse(self.rooms[room])
        wanted = change(current)
        if wanted != current or not self.rooms[room]:
            self.rooms[room] = room_metadata.dump(wanted)
        return wanted

    async def participants(self, room: str) -> list[Participant]:
        self._check("participants", room)
        return list(self.members.get(room, {}).values())

    async def remove_participant(self, room: str, identity: str) -> None:
        self._check("remove_participant", room)
        self.members.get(room, {}).pop(identity, None)

    async def aclose(self) -> None:
        return None
