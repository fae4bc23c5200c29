"""Token routes and stream-info (reference §5, §6, §13, §14, §18.1-2, §18.4, §18.9-13)."""

from __future__ import annotations

import json
import re

import pytest

from cast_core.grants import LINK_ATTRIBUTE
from cast_core.keys import link_name_from_key
from cast_core.room_metadata import parse
from tests.api.conftest import Harness, build, make_settings
from tests.support.signing import scene_metadata

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


# ---- streamer-token ---------------------------------------------------------------------------
def test_streamer_token(h: Harness) -> None:
    key = h.key()
    r = h.client.post("/cast/streamer-token", json={"token": key, "identity": "happy-fox"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"url", "token", "roomId", "identity"}
    assert body["url"] == "wss://livekit.example.com"
    assert body["roomId"] == "scene-fenrir:bafytest123"
    assert re.fullmatch(rf"stream:place-genesis:{UUID}", body["identity"])
    claims = h.claims(body["token"])
    assert claims.identity == body["identity"]
    assert claims.name == "happy-fox"
    assert json.loads(claims.metadata) == {"role": "streamer", "displayName": "happy-fox"}
    assert claims.attributes == {LINK_ATTRIBUTE: link_name_from_key(key)}
    video = claims.video
    assert video is not None
    assert (video.room_join, video.room, video.room_list) == (True, body["roomId"], False)
    assert (video.can_publish, video.can_subscribe, video.can_publish_data) == (True, True, True)
    assert video.can_update_own_metadata is True
    assert not video.can_publish_sources  # all sources
    assert not video.hidden and not video.room_admin and not video.room_create


def test_streamer_token_ttl_is_300s(h: Harness) -> None:
    import jwt

    key = h.key()
    token = h.client.post("/cast/streamer-token", json={"token": key, "identity": "x"}).json()[
        "token"
    ]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["nbf"] == 300


def test_streamer_becomes_presenter_and_foreign_metadata_kept(h: Harness) -> None:
    key = h.key()
    h.rooms.rooms["scene-fenrir:bafytest123"] = json.dumps(
        {"bannedAddresses": ["0xbad"], "presenters": ["0xabc"]}
    )
    identity = h.client.post("/cast/streamer-token", json={"token": key, "identity": "x"}).json()[
        "identity"
    ]
    md = parse(h.rooms.rooms["scene-fenrir:bafytest123"])
    assert md == {"bannedAddresses": ["0xbad"], "presenters": ["0xabc", identity]}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": "k"},
        {"token": "k", "identity": ""},
        {"token": "k", "identity": "   "},
        {"token": "k", "identity": " x"},
        {"token": "k", "identity": 42},
        {"token": "k", "identity": "x" * 257},
        [],
    ],
)
def test_streamer_token_schema(h: Harness, body: object) -> None:
    r = h.client.post("/cast/streamer-token", json=body)
    assert r.status_code == 400
    assert r.json()["ok"] is False
    assert r.json()["message"] == "Invalid JSON body"
    assert isinstance(r.json()["data"], list) and r.json()["data"]


def test_trailing_spaces_allowed_and_extra_properties_ignored(h: Harness) -> None:
    key = h.key()
    r = h.client.post("/cast/streamer-token", json={"token": key, "identity": "x  ", "more": 1})
    assert r.status_code == 200


def test_streamer_token_not_json(h: Harness) -> None:
    r = h.client.post(
        "/cast/streamer-token", content=b"{nope", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 400
    assert r.json()["ok"] is False and r.json()["message"] != "Invalid JSON body"


def test_content_type_not_enforced(h: Harness) -> None:
    key = h.key()
    r = h.client.post(
        "/cast/streamer-token",
        content=json.dumps({"token": key, "identity": "x"}),
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "cast2-link-abc123",
        "",
        "a" * 200,
        "0123456789ab-1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_unknown_key_is_401(h: Harness, token: str) -> None:
    r = h.client.post("/cast/streamer-token", json={"token": token or "x", "identity": "x"})
    assert r.status_code == 401
    assert r.json() == {"error": "Invalid or expired streaming token"}


def test_forged_mac_is_401(h: Harness) -> None:
    key = h.key()
    prefix, mac = key.split(".")
    forged = prefix + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    r = h.client.post("/cast/streamer-token", json={"token": forged, "identity": "x"})
    assert r.status_code == 401


def test_expired_key_is_401(h: Harness) -> None:
    key = h.key()
    h.clock.advance(4 * 86400)
    r = h.client.post("/cast/streamer-token", json={"token": key, "identity": "x"})
    assert r.status_code == 401
    assert r.json() == {"error": "Streaming token has expired"}


def test_revoked_key_is_401(h: Harness) -> None:
    import asyncio

    key = h.key()
    asyncio.run(
        h.store.patch_spec(
            link_name_from_key(key) or "", {"revoked": True, "revocationReason": "X"}
        )
    )
    r = h.client.post("/cast/streamer-token", json={"token": key, "identity": "x"})
    assert r.status_code == 401
    assert r.json() == {"error": "Invalid or expired streaming token"}


def test_recreated_link_does_not_accept_old_key(h: Harness) -> None:
    import asyncio

    from cast_core.model import StreamLink, StreamLinkDraft

    key = h.key()
    name = link_name_from_key(key) or ""
    old = StreamLink.from_body(h.store.raw(name))
    h.store.delete(name)
    asyncio.run(
        h.store.create(
            StreamLinkDraft(
                name,
                old.place,
                old.scene_id,
                old.realm,
                old.room,
                old.generated_by,
                old.expiration_time,
            )
        )
    )
    r = h.client.post("/cast/streamer-token", json={"token": key, "identity": "x"})
    assert r.status_code == 401


def test_livekit_down_is_503(h: Harness) -> None:
    key = h.key()
    h.rooms.down = True
    r = h.client.post("/cast/streamer-token", json={"token": key, "identity": "x"})
    assert r.status_code == 503
    assert "error" in r.json()


def test_signing_key_rotation() -> None:
    old = build(make_settings(CAST_LINK_SIGNING_KEY="o" * 40))
    with old.client:
        key = old.key()
    rotated = build(make_settings(CAST_LINK_SIGNING_KEY=f"{'n' * 40},{'o' * 40}"))
    rotated.store = old.store
    rotated.client.app.state.cast.service.store = old.store  # type: ignore[attr-defined]
    rotated.clock.set(old.clock.now())
    with rotated.client:
        ok = rotated.client.post("/cast/streamer-token", json={"token": key, "identity": "x"})
        assert ok.status_code == 200
    dropped = build(make_settings(CAST_LINK_SIGNING_KEY="n" * 40))
    dropped.client.app.state.cast.service.store = old.store  # type: ignore[attr-defined]
    dropped.clock.set(old.clock.now())
    with dropped.client:
        r = dropped.client.post("/cast/streamer-token", json={"token": key, "identity": "x"})
        assert r.status_code == 401


# ---- watcher-token ----------------------------------------------------------------------------
def test_watcher_token_by_parcel(h: Harness) -> None:
    h.key()
    r = h.client.post("/cast/watcher-token", json={"location": "10,20", "identity": "Ann B!"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"url", "token", "roomId", "identity", "placeName"}
    assert body["placeName"] == "Genesis Plaza"
    assert body["roomId"] == "scene-fenrir:bafytest123"
    assert re.fullmatch(rf"watch:scene-fenrir:bafytest123:{UUID}", body["identity"])
    claims = h.claims(body["token"])
    assert claims.name == "Ann B!"
    assert json.loads(claims.metadata) == {
        "role": "watcher",
        "displayName": "Ann B!",
        "roomId": "scene-fenrir:bafytest123",
    }
    v = claims.video
    assert v is not None
    assert (v.can_publish, v.can_subscribe, v.can_publish_data) == (False, True, True)
    assert v.can_update_own_metadata is False
    assert list(v.can_publish_sources) == ["microphone"]
    assert not claims.attributes


def test_watcher_token_other_parcel_of_place(h: Harness) -> None:
    h.key()
    r = h.client.post("/cast/watcher-token", json={"location": "10,21", "identity": "x"})
    assert r.status_code == 200


def test_watcher_token_world(h: Harness) -> None:
    md = scene_metadata(
        server_name="myworld.dcl.eth",
        hostname="https://worlds-content-server.decentraland.org",
        parcel="0,0",
    )
    h.key(md)
    r = h.client.post("/cast/watcher-token", json={"location": "myworld.dcl.eth", "identity": "x"})
    assert r.status_code == 200, r.text
    assert r.json()["placeName"] == "My World"
    r = h.client.post(
        "/cast/watcher-token",
        json={"location": "myworld.dcl.eth", "identity": "x", "parcel": "0,1"},
    )
    assert r.status_code == 200
    r = h.client.post(
        "/cast/watcher-token",
        json={"location": "myworld.dcl.eth", "identity": "x", "parcel": "5,5"},
    )
    assert r.status_code == 404
    assert r.json() == {
        "error": "No world scene place found for world myworld.dcl.eth at position 5,5"
    }


def test_watcher_place_without_title_uses_location(h: Harness) -> None:
    h.key(scene_metadata(parcel="50,60", scene_id="bafyuntitled"))
    r = h.client.post("/cast/watcher-token", json={"location": "50,60", "identity": "x"})
    assert r.status_code == 200
    assert r.json()["placeName"] == "50,60"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("10,20", "No active stream found for 10,20"),
        ("1,1", "No place found with parcel 1,1"),
        ("somewhere", "No place found with parcel somewhere"),
        ("nobody.dcl.eth", "No world found with name nobody.dcl.eth"),
    ],
)
def test_watcher_token_404s(h: Harness, location: str, message: str) -> None:
    r = h.client.post("/cast/watcher-token", json={"location": location, "identity": "x"})
    assert r.status_code == 404
    assert r.json() == {"error": message}


def test_watcher_token_expired(h: Harness) -> None:
    h.key()
    h.clock.advance(4 * 86400 + 5)
    r = h.client.post("/cast/watcher-token", json={"location": "10,20", "identity": "x"})
    assert r.status_code == 401
    assert r.json() == {"error": "Stream access has expired. Please generate a new stream link."}


@pytest.mark.parametrize(
    "body", [{"identity": "x"}, {"location": "10,20"}, {"location": "10,20", "identity": "  "}]
)
def test_watcher_token_schema(h: Harness, body: dict[str, str]) -> None:
    r = h.client.post("/cast/watcher-token", json=body)
    assert r.status_code == 400
    assert r.json()["message"] == "Invalid JSON body"


# ---- presentation-bot-token -------------------------------------------------------------------
def test_bot_token(h: Harness) -> None:
    key = h.key()
    r = h.client.post("/cast/presentation-bot-token", json={"streamingKey": key})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"url", "token", "roomId"}
    claims = h.claims(body["token"])
    assert re.fullmatch(rf"presentation-bot:scene-fenrir:bafytest123:{UUID}", claims.identity)
    assert json.loads(claims.metadata) == {"role": "presentation"}
    assert not claims.name
    v = claims.video
    assert v is not None
    assert (v.can_publish, v.can_subscribe, v.can_publish_data) == (True, True, True)
    assert not v.can_publish_sources
    assert v.can_update_own_metadata is False
    assert claims.attributes == {LINK_ATTRIBUTE: link_name_from_key(key)}
    # Bots are not presenters.
    assert "scene-fenrir:bafytest123" not in h.rooms.rooms


@pytest.mark.parametrize("body", [{}, {"streamingKey": ""}])
def test_bot_token_schema(h: Harness, body: dict[str, str]) -> None:
    r = h.client.post("/cast/presentation-bot-token", json=body)
    assert r.status_code == 400


def test_bot_token_unknown_and_expired(h: Harness) -> None:
    r = h.client.post("/cast/presentation-bot-token", json={"streamingKey": "nope"})
    assert r.status_code == 401
    key = h.key()
    h.clock.advance(4 * 86400 + 1)
    r = h.client.post("/cast/presentation-bot-token", json={"streamingKey": key})
    assert r.status_code == 401
    assert r.json() == {"error": "Streaming token has expired"}


# ---- stream-info ------------------------------------------------------------------------------
def test_stream_info_genesis(h: Harness) -> None:
    key = h.key()
    r = h.client.get(f"/cast/stream-info/{key}")
    assert r.status_code == 200
    assert r.json() == {
        "placeName": "10,20",
        "placeId": "place-genesis",
        "location": "10,20",
        "isWorld": False,
    }


def test_stream_info_world(h: Harness) -> None:
    md = scene_metadata(
        server_name="myworld.dcl.eth",
        hostname="https://worlds-content-server.decentraland.org",
        parcel="0,0",
    )
    key = h.key(md)
    r = h.client.get(f"/cast/stream-info/{key}")
    assert r.json() == {
        "placeName": "myworld.dcl.eth",
        "placeId": "place-world",
        "location": "myworld.dcl.eth",
        "isWorld": True,
    }


def test_stream_info_errors(h: Harness) -> None:
    r = h.client.get("/cast/stream-info/unknown")
    assert (r.status_code, r.json()) == (400, {"error": "Invalid streaming key"})
    key = h.key()
    h.clock.advance(4 * 86400)
    r = h.client.get(f"/cast/stream-info/{key}")
    assert (r.status_code, r.json()) == (400, {"error": "Stream access has expired"})
