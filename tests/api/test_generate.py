"""GET /cast/generate-stream-link (reference §4, §18.3, §18.8; DESIGN one-active-link rule)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx

from cast_core.keys import link_name_from_key
from cast_core.model import LABEL_PLACE, LABEL_ROOM
from cast_core.rooms import room_label
from tests.api.conftest import SIGNING_KEY, Harness
from tests.support.signing import Identity, scene_metadata, signed_headers


def test_admin_gets_all_seven_fields(h: Harness) -> None:
    r = h.generate()
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "streamLink",
        "watcherLink",
        "streamingKey",
        "placeId",
        "placeName",
        "expiresAt",
        "expiresInDays",
    }
    key = body["streamingKey"]
    assert body["streamLink"] == f"https://cast2.decentraland.org/s/{key}"
    assert body["watcherLink"] == "https://cast2.decentraland.org/w/10,20"
    assert body["placeId"] == "place-genesis"
    assert body["placeName"] == "Genesis Plaza"
    assert body["expiresInDays"] == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["expiresAt"])


def test_link_resource_holds_no_key(h: Harness) -> None:
    key = h.key()
    name = link_name_from_key(key)
    assert name is not None
    raw = h.store.raw(name)
    spec = raw["spec"]
    assert spec["room"] == "scene-fenrir:bafytest123"
    assert spec["generatedBy"] == h.admin.address.lower()
    assert spec["place"] == {
        "id": "place-genesis",
        "name": "Genesis Plaza",
        "location": "10,20",
        "world": False,
    }
    assert spec["scene"] == {"id": "bafytest123", "realm": "fenrir"}
    assert raw["metadata"]["labels"][LABEL_PLACE] == "place-genesis"
    assert raw["metadata"]["labels"][LABEL_ROOM] == room_label("scene-fenrir:bafytest123")
    flat = repr(raw)
    assert key not in flat and key.split(".")[1] not in flat
    assert SIGNING_KEY not in flat


def test_same_key_while_active_and_one_object(h: Harness) -> None:
    first = h.key()
    h.clock.advance(3600)
    second = h.generate().json()
    assert second["streamingKey"] == first
    assert second["expiresInDays"] == 4  # ceil of 3 days 23 h
    assert len(h.store.by_place("place-genesis")) == 1


def test_new_key_after_expiry(h: Harness) -> None:
    first = h.key()
    h.clock.advance(4 * 86400 + 1)
    second = h.generate().json()
    assert second["streamingKey"] != first
    assert second["expiresInDays"] == 4
    assert len(h.store.by_place("place-genesis")) == 2


def test_new_room_supersedes_older_link(h: Harness) -> None:
    first = h.key()
    second = h.key(scene_metadata(scene_id="bafynewscene"))
    assert second != first
    old = h.store.raw(link_name_from_key(first) or "")
    assert old["spec"]["revoked"] is True
    assert old["spec"]["revocationReason"] == "Superseded"
    r = h.client.post("/cast/streamer-token", json={"token": first, "identity": "x"})
    assert r.status_code == 401


def test_scene_id_required(h: Harness) -> None:
    md = scene_metadata()
    del md["sceneId"]
    r = h.generate(md)
    assert r.status_code == 400
    assert "sceneId is required" in r.json()["error"]


def test_realm_required(h: Harness) -> None:
    md = scene_metadata()
    del md["realm"]
    r = h.generate(md)
    assert r.status_code == 401
    assert r.json() == {"error": "Access denied, invalid signed-fetch request, no realm"}


def test_only_parcel_metadata_is_401(h: Harness) -> None:
    r = h.generate({"signer": "decentraland-kernel-scene", "parcel": "10,20"})
    assert r.status_code == 401


def test_world_scene(h: Harness) -> None:
    md = scene_metadata(
        scene_id="bafytest456",
        server_name="myworld.dcl.eth",
        hostname="https://worlds-content-server.decentraland.org",
        parcel="0,1",
    )
    r = h.generate(md)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["watcherLink"].endswith("/w/myworld.dcl.eth")
    assert body["placeId"] == "place-world"
    name = link_name_from_key(body["streamingKey"]) or ""
    assert h.store.raw(name)["spec"]["room"] == "world-prod-scene-room-myworld.dcl.eth-bafytest456"


def test_world_scene_without_parcel_uses_world_by_name(h: Harness) -> None:
    md = scene_metadata(
        server_name="MyWorld.dcl.eth",
        hostname="https://worlds-content-server.decentraland.org",
        parcel=None,
    )
    r = h.generate(md)
    assert r.status_code == 200, r.text
    assert r.json()["placeId"] == "place-world"


def test_not_admin_is_403(h: Harness) -> None:
    r = h.generate(who=Identity())
    assert r.status_code == 403
    assert r.json() == {"error": "Only scene administrators can generate stream links"}


def test_unknown_parcel_is_404(h: Harness) -> None:
    r = h.generate(scene_metadata(parcel="99,99"))
    assert r.status_code == 404
    assert r.json() == {"error": "No place found with parcel 99,99"}


def test_malformed_parcel_never_reaches_directory(h: Harness) -> None:
    r = h.generate(scene_metadata(parcel="0,0&names=x"))
    assert r.status_code == 404
    assert r.json() == {"error": "No place found with parcel 0,0&names=x"}


def test_wrong_signer_rejected_by_metadata_validator(h: Harness) -> None:
    r = h.generate(scene_metadata(signer="dcl:explorer"))
    assert r.status_code == 400
    assert r.json()["ok"] is False
    assert r.json()["message"].startswith("Invalid metadata content: ")


def test_no_auth_headers(h: Harness) -> None:
    r = h.client.get("/cast/generate-stream-link")
    assert r.status_code == 400
    assert r.json() == {"ok": False, "message": "Invalid Auth Chain"}


def test_room_of_another_place_is_refused(h: Harness) -> None:
    h.key()  # place-genesis now streams into scene-fenrir:bafytest123
    other_admin = Identity()
    h.admin = other_admin
    # The other place's admin claims the same scene/realm from their own parcel.
    from cast_core.places_static import StaticPlaceDirectory
    from tests.api.conftest import places

    entries = places(other_admin.address)
    state = h.client.app.state.cast  # type: ignore[attr-defined]
    state.service.directory = StaticPlaceDirectory(entries)
    r = h.generate(scene_metadata(parcel="50,60"))
    assert r.status_code == 403
    assert len(h.store.by_place("place-untitled")) == 0


def test_store_down_is_503(h: Harness) -> None:
    h.store.unavailable = True
    r = h.generate()
    assert r.status_code == 503
    assert "error" in r.json()


def test_signed_path_honours_base_url_prefix() -> None:
    from tests.api.conftest import build, make_settings

    harness = build(make_settings(CAST_HTTP_BASE_URL="https://gk.example.org/comms"))
    with harness.client:
        r = harness.generate(sign_path="/comms/cast/generate-stream-link")
        assert r.status_code == 200, r.text
        r = harness.generate()  # signed without the prefix: not what the server checks
        assert r.status_code == 401


async def test_concurrent_generates_converge_to_one_link(h: Harness) -> None:
    transport = httpx.ASGITransport(app=h.client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def one() -> httpx.Response:
            headers = signed_headers(
                h.admin, "GET", "/cast/generate-stream-link", scene_metadata(), now=h.clock.now()
            )
            return await client.get("/cast/generate-stream-link", headers=headers)

        responses = await asyncio.gather(*(one() for _ in range(8)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["streamingKey"] for r in responses}) == 1
    assert len(h.store.by_place("place-genesis")) == 1


def test_race_lost_on_name_adopts_winner(h: Harness) -> None:
    """Another replica created link number 1 first: this one must return that link's key."""
    from cast_core.model import PlaceRef, StreamLinkDraft, link_name

    draft = StreamLinkDraft(
        name=link_name("place-genesis", 1),
        place=PlaceRef("place-genesis", "Genesis Plaza", "10,20", False),
        scene_id="bafytest123",
        realm="fenrir",
        room="scene-fenrir:bafytest123",
        generated_by="0xother",
        expiration_time=h.clock.now() + timedelta(days=4),
    )
    hidden = asyncio.run(h.store.create(draft))
    # Hide it from this replica's view, as a lagging watch cache would.
    real_by_place = h.store.by_place
    calls = {"n": 0}

    def lagging(place_id: str) -> list:  # type: ignore[type-arg]
        calls["n"] += 1
        return [] if calls["n"] == 1 else real_by_place(place_id)

    h.store.by_place = lagging  # type: ignore[method-assign]
    key = h.key()
    assert link_name_from_key(key) == hidden.name
