"""API fast tier: the real app with an in-memory store, a fake LiveKit and a static directory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from livekit import api

from cast_api.main import create_app
from cast_core.clock import FakeClock
from cast_core.fakes import FakeRoomAdmin
from cast_core.places_static import StaticPlaceDirectory
from cast_core.settings import Settings
from cast_core.store_memory import MemoryStreamLinkStore
from tests.support.signing import Identity, scene_metadata, signed_headers

SIGNING_KEY = "k" * 48
LIVEKIT_KEY = "devkey"
LIVEKIT_SECRET = "livekit-secret-0123456789-abcdefghij"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "CAST_LINK_SIGNING_KEY": SIGNING_KEY,
        "LIVEKIT_URL": "wss://livekit.example.com",
        "LIVEKIT_API_KEY": LIVEKIT_KEY,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "CAST_STORE": "memory",
        "SCENE_ROOM_PREFIX": "scene-",
        "WORLD_ROOM_PREFIX": "world-prod-scene-room-",
        "CAST_PLACES_BACKEND": "static",
        "CAST_NAMESPACE": "cast",
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Harness:
    client: TestClient
    store: MemoryStreamLinkStore
    rooms: FakeRoomAdmin
    clock: FakeClock
    admin: Identity
    stranger: Identity
    settings: Settings

    def signed(
        self,
        method: str,
        path: str,
        metadata: dict[str, Any] | None = None,
        *,
        who: Identity | None = None,
        sign_path: str | None = None,
    ) -> Any:
        headers = signed_headers(
            who or self.admin,
            method,
            sign_path or path,
            metadata if metadata is not None else scene_metadata(),
            now=self.clock.now(),
        )
        return self.client.request(method, path, headers=headers)

    def generate(self, metadata: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.signed("GET", "/cast/generate-stream-link", metadata, **kw)

    def key(self, metadata: dict[str, Any] | None = None) -> str:
        response = self.generate(metadata)
        assert response.status_code == 200, response.text
        key: str = response.json()["streamingKey"]
        return key

    def claims(self, token: str) -> Any:
        return api.TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(token)


def places(admin: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "place-genesis",
            "title": "Genesis Plaza",
            "base_position": "10,20",
            "positions": ["10,20", "10,21"],
            "owner": admin,
        },
        {
            "id": "place-untitled",
            "base_position": "50,60",
            "positions": ["50,60"],
            "owner": admin,
        },
        {
            "id": "place-world",
            "title": "My World",
            "world": True,
            "world_name": "myworld.dcl.eth",
            "base_position": "0,0",
            "positions": ["0,0", "0,1"],
            "admins": [admin],
        },
        {
            "id": "place-other",
            "title": "Someone else's",
            "base_position": "30,30",
            "positions": ["30,30"],
            "owner": "0x000000000000000000000000000000000000dead",
        },
    ]


def build(settings: Settings | None = None, *, admin: Identity | None = None) -> Harness:
    admin = admin or Identity()
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    store = MemoryStreamLinkStore("cast", clock)
    rooms = FakeRoomAdmin()
    settings = settings or make_settings()
    app = create_app(
        settings,
        store=store,
        rooms=rooms,
        directory=StaticPlaceDirectory(places(admin.address)),
        clock=clock,
    )
    return Harness(TestClient(app), store, rooms, clock, admin, Identity(), settings)


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = build()
    with harness.client:
        yield harness
