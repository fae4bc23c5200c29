"""Fakes for driving the operator's handlers without kopf's reactor, a cluster or LiveKit."""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
import pytest

from cast_core import room_metadata
from cast_core.clock import FakeClock
from cast_core.fakes import FakeRoomAdmin
from cast_core.grants import LINK_ATTRIBUTE
from cast_core.livekit_rooms import MetadataChange
from cast_core.model import API_VERSION, KIND, StreamLink, format_time
from cast_core.settings import Settings
from cast_core.store import Conflict, NotFound
from cast_operator.runtime import MEMO_KEY, Runtime

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NAMESPACE = "cast"
ROOM = "scene-fenrir:bafytest123"
PLACE = "place-1"
LOGGER = logging.getLogger("tests.operator")


def streamer(n: int, place: str = PLACE) -> str:
    return f"stream:{place}:00000000-0000-4000-8000-{n:012d}"


def link_body(
    name: str = "sl-aaaaaaaaaaaa-1",
    *,
    uid: str | None = None,
    place: str = PLACE,
    room: str = ROOM,
    expires: datetime = START + timedelta(hours=1),
    presenters: tuple[str, ...] = (),
    revoked: bool = False,
    reason: str | None = None,
    status: dict[str, Any] | None = None,
    generation: int = 1,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "place": {"id": place, "name": "Place", "location": "10,20", "world": False},
        "scene": {"id": "bafytest123", "realm": "fenrir"},
        "room": room,
        "generatedBy": "0x" + "a" * 40,
        "expirationTime": format_time(expires),
        "presenters": list(presenters),
        "revoked": revoked,
    }
    if reason is not None:
        spec["revocationReason"] = reason
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": uid or f"uid-{name}",
            "resourceVersion": "1",
            "generation": generation,
            "creationTimestamp": format_time(START),
        },
        "spec": spec,
        "status": status or {},
    }


class Rooms(FakeRoomAdmin):
    """FakeRoomAdmin that also counts real metadata writes and timestamps evictions."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.metadata_writes = 0
        self.evictions: list[tuple[datetime, str]] = []
        self.rejecting = False

    async def change_metadata(
        self, room: str, change: MetadataChange, *, create: bool
    ) -> dict[str, Any] | None:
        if self.rejecting:
            from cast_core.livekit_rooms import LiveKitRejected

            raise LiveKitRejected("LiveKit refused update_room_metadata: permission_denied")
        before = self.rooms.get(room)
        result = await super().change_metadata(room, change, create=create)
        if self.rooms.get(room) != before:
            self.metadata_writes += 1
        return result

    async def remove_participant(self, room: str, identity: str) -> None:
        await super().remove_participant(room, identity)
        self.evictions.append((self.clock.now(), identity))

    def join_link(self, room: str, identity: str, link: str) -> None:
        self.join(room, identity, {LINK_ATTRIBUTE: link})

    def set_metadata(self, room: str, raw: str) -> None:
        self.rooms[room] = raw


class Links:
    """The apiserver as the operator's LinkApi sees it: status merge-patches with resourceVersion
    preconditions. Bodies are updated in place, like kopf's live body views in daemons."""

    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any]] = {}
        self.status_writes: list[tuple[str, dict[str, Any]]] = []
        self.deleted: list[tuple[str, str]] = []
        self.conflict_once = False
        self.before_patch: Callable[[], None] | None = None  # runs once, before the next patch

    def add(self, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies[body["metadata"]["name"]] = body
        return body

    def bump(self, name: str) -> None:
        meta = self.bodies[name]["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    def change_spec(self, name: str, **spec: Any) -> None:
        body = self.bodies[name]
        body["spec"].update(spec)
        body["metadata"]["generation"] += 1
        self.bump(name)

    async def get(self, name: str) -> dict[str, Any] | None:
        body = self.bodies.get(name)
        return None if body is None else copy.deepcopy(body)

    async def patch_status(
        self, name: str, status: dict[str, Any], *, resource_version: str
    ) -> dict[str, Any]:
        body = self.bodies.get(name)
        if body is None:
            raise NotFound(name)
        if self.before_patch is not None:
            hook, self.before_patch = self.before_patch, None
            hook()
        if self.conflict_once:
            self.conflict_once = False
            self.bump(name)
        if body["metadata"]["resourceVersion"] != resource_version:
            raise Conflict(name)
        body.setdefault("status", {}).update(copy.deepcopy(status))
        self.status_writes.append((name, copy.deepcopy(status)))
        self.bump(name)
        return copy.deepcopy(body)

    async def delete(self, name: str, *, uid: str) -> None:
        self.deleted.append((name, uid))
        body = self.bodies.get(name)
        if body is not None and body["metadata"]["uid"] == uid:
            body["metadata"]["deletionTimestamp"] = "now"


class Stopped:
    """kopf.DaemonStopped stand-in: falsy until set."""

    def __init__(self) -> None:
        self.flag = False

    def __bool__(self) -> bool:
        return self.flag

    def is_set(self) -> bool:
        return self.flag


class Sleeper:
    """Sleeping moves the fake clock; scheduled actions run when their time has come."""

    def __init__(self, clock: FakeClock, limit: int = 10_000) -> None:
        self.clock = clock
        self.calls: list[float] = []
        self.limit = limit
        self.at: list[tuple[datetime, Callable[[], None]]] = []

    def schedule(self, when: datetime, action: Callable[[], None]) -> None:
        self.at.append((when, action))
        self.at.sort(key=lambda item: item[0])

    async def __call__(self, seconds: float, stopped: kopf.DaemonStopped) -> None:
        assert seconds >= 0
        self.calls.append(seconds)
        if len(self.calls) > self.limit:
            raise AssertionError("daemon loop did not finish")
        self.clock.advance(seconds)
        while self.at and self.at[0][0] <= self.clock.now():
            _, action = self.at.pop(0)
            action()


class Events:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str, str]] = []

    def __call__(self, body: Any, type_: str, reason: str, message: str) -> None:
        self.posted.append((body["metadata"]["name"], type_, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, _, reason, _ in self.posted]


async def call(handler: Callable[..., object], **kwargs: Any) -> Any:
    """Await a kopf-decorated handler (its decorated type hides that it is a coroutine)."""
    result = handler(**kwargs)
    assert inspect.isawaitable(result)
    return await result


class World:
    """Everything one test needs, wired into a Runtime in a kopf memo."""

    def __init__(self, *, retention: int = 3600, resync: float = 30.0) -> None:
        self.clock = FakeClock(START)
        self.rooms = Rooms(self.clock)
        self.links = Links()
        self.sleep = Sleeper(self.clock)
        self.events = Events()
        self.settings = Settings(namespace=NAMESPACE, retention=retention, resync_interval=resync)
        self.rt = Runtime(
            settings=self.settings,
            rooms=self.rooms,
            links=self.links,
            clock=self.clock,
            sleep=self.sleep,
            events=self.events,
            jitter=lambda delay: delay,
        )
        self.memo = kopf.Memo()
        self.memo[MEMO_KEY] = self.rt
        self.stopped = Stopped()

    def index(self) -> dict[str, list[StreamLink]]:
        out: dict[str, list[StreamLink]] = {}
        for body in self.links.bodies.values():
            link = StreamLink.from_body(body)
            out.setdefault(link.room, []).append(link)
        return out

    def kwargs(self, name: str) -> dict[str, Any]:
        """What kopf passes to a handler of this object (the subset our handlers read)."""
        return {
            "body": self.links.bodies[name],
            "memo": self.memo,
            "logger": LOGGER,
            "links_by_room": self.index(),
            "patch": kopf.Patch(),
        }

    def daemon_kwargs(self, name: str) -> dict[str, Any]:
        return {**self.kwargs(name), "stopped": cast(kopf.DaemonStopped, self.stopped)}

    def link(self, name: str) -> StreamLink:
        return StreamLink.from_body(self.links.bodies[name])


@pytest.fixture
def world() -> World:
    return World()


NAME = "sl-aaaaaaaaaaaa-1"


def conditions(world: World, name: str = NAME) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in world.links.bodies[name]["status"].get("conditions", [])}


def presenters(world: World) -> list[str]:
    return room_metadata.presenters(room_metadata.parse(world.rooms.rooms[ROOM]))
