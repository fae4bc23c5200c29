"""GET/PUT/DELETE /cast/presenters (reference §12, §18.5, §18.14)."""

from __future__ import annotations

import json

import pytest

from cast_core.keys import link_name_from_key
from cast_core.room_metadata import parse
from tests.api.conftest import Harness
from tests.support.signing import Identity, scene_metadata

ROOM = "scene-fenrir:bafytest123"
ADDRESS = "0x1234567890AbcdEF1234567890aBcdef12345678"
STREAMER = "stream:place-123:a1b2c3d4-e5f6-7890-abcd-ef1234567890"


def test_get_presenters(h: Harness) -> None:
    h.key()
    h.rooms.rooms[ROOM] = json.dumps({"presenters": [ADDRESS.lower()], "sceneAdmins": ["0x1"]})
    r = h.signed("GET", "/cast/presenters")
    assert r.status_code == 200
    assert r.json() == {"presenters": [ADDRESS.lower()]}


@pytest.mark.parametrize("raw", [None, "", "not json", json.dumps({"presenters": "x"})])
def test_get_presenters_empty(h: Harness, raw: str | None) -> None:
    h.key()
    if raw is not None:
        h.rooms.rooms[ROOM] = raw
    r = h.signed("GET", "/cast/presenters")
    assert r.json() == {"presenters": []}


def test_not_admin_403(h: Harness) -> None:
    h.key()
    for method, path in [
        ("GET", "/cast/presenters"),
        ("PUT", f"/cast/presenters/{ADDRESS}"),
        ("DELETE", f"/cast/presenters/{ADDRESS}"),
    ]:
        r = h.signed(method, path, who=Identity())
        assert r.status_code == 403
        assert r.json() == {"error": "Only scene administrators can manage presenters"}


def test_no_active_stream_404(h: Harness) -> None:
    r = h.signed("GET", "/cast/presenters")
    assert r.status_code == 404
    assert r.json() == {"error": f"No active stream found for {ROOM}"}


def test_expired_link_no_longer_grants_presenter_management(h: Harness) -> None:
    h.key()
    h.clock.advance(4 * 86400 + 1)
    assert h.signed("GET", "/cast/presenters").status_code == 404


def test_promote_lowercases_and_preserves_foreign_metadata(h: Harness) -> None:
    key = h.key()
    h.rooms.rooms[ROOM] = json.dumps({"bannedAddresses": ["0xbad"], "presenters": ["0xother"]})
    r = h.signed("PUT", f"/cast/presenters/{ADDRESS}")
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Participant promoted to presenter"}
    md = parse(h.rooms.rooms[ROOM])
    assert md == {"bannedAddresses": ["0xbad"], "presenters": ["0xother", ADDRESS.lower()]}
    spec = h.store.raw(link_name_from_key(key) or "")["spec"]
    assert spec["presenters"] == [ADDRESS.lower()]
    # idempotent
    assert h.signed("PUT", f"/cast/presenters/{ADDRESS.lower()}").status_code == 200
    assert parse(h.rooms.rooms[ROOM])["presenters"] == ["0xother", ADDRESS.lower()]
    assert h.store.raw(link_name_from_key(key) or "")["spec"]["presenters"] == [ADDRESS.lower()]


def test_promote_creates_room(h: Harness) -> None:
    h.key()
    assert ROOM not in h.rooms.rooms
    assert h.signed("PUT", f"/cast/presenters/{ADDRESS}").status_code == 200
    assert parse(h.rooms.rooms[ROOM]) == {"presenters": [ADDRESS.lower()]}


def test_promote_streamer_identity_url_encoded(h: Harness) -> None:
    h.key()
    encoded = STREAMER.replace(":", "%3A")
    r = h.signed("PUT", f"/cast/presenters/{encoded}")
    assert r.status_code == 200, r.text
    assert parse(h.rooms.rooms[ROOM])["presenters"] == [STREAMER]


@pytest.mark.parametrize(
    "identity",
    [
        "watch:room-123:a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        "presentation-bot:room-123:a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        "not-an-address",
        "0x123",
        "0x" + "g" * 40,
    ],
)
def test_invalid_identity_400(h: Harness, identity: str) -> None:
    h.key()
    for method in ("PUT", "DELETE"):
        r = h.signed(method, f"/cast/presenters/{identity}")
        assert r.status_code == 400
        assert r.json() == {
            "error": "participantIdentity must be a valid Ethereum address or streamer identity"
        }


def test_demote(h: Harness) -> None:
    key = h.key()
    h.signed("PUT", f"/cast/presenters/{ADDRESS}")
    h.rooms.rooms[ROOM] = json.dumps(
        {"presenters": ["0xother", ADDRESS.lower()], "sceneAdmins": ["0x9"]}
    )
    r = h.signed("DELETE", f"/cast/presenters/{ADDRESS}")
    assert r.status_code == 200
    assert r.json() == {"message": "Participant demoted from presenter"}
    assert parse(h.rooms.rooms[ROOM]) == {"presenters": ["0xother"], "sceneAdmins": ["0x9"]}
    assert h.store.raw(link_name_from_key(key) or "")["spec"]["presenters"] == []
    # Not present any more, and a room that doesn't exist: still 200.
    assert h.signed("DELETE", f"/cast/presenters/{ADDRESS}").status_code == 200
    del h.rooms.rooms[ROOM]
    assert h.signed("DELETE", f"/cast/presenters/{STREAMER}").status_code == 200
    assert ROOM not in h.rooms.rooms


def test_presenters_bounded(h: Harness) -> None:
    h.key()
    for i in range(64):
        assert h.signed("PUT", f"/cast/presenters/0x{i:040x}").status_code == 200
    r = h.signed("PUT", f"/cast/presenters/0x{99:040x}")
    assert r.status_code == 400
    assert "at most 64" in r.json()["error"]


def test_livekit_down_on_promote_is_503(h: Harness) -> None:
    h.key()
    h.rooms.down = True
    r = h.signed("PUT", f"/cast/presenters/{ADDRESS}")
    assert r.status_code == 503


def test_presenter_routes_need_scene_id_and_realm(h: Harness) -> None:
    h.key()
    md = scene_metadata()
    del md["sceneId"]
    r = h.signed("GET", "/cast/presenters", md)
    assert (r.status_code, r.json()) == (400, {"error": "sceneId is required in authMetadata"})
    md = scene_metadata()
    del md["realm"]
    assert h.signed("GET", "/cast/presenters", md).status_code == 401


def test_signature_checked_before_identity(h: Harness) -> None:
    r = h.client.put("/cast/presenters/not-an-address")
    assert r.status_code == 400
    assert r.json() == {"ok": False, "message": "Invalid Auth Chain"}
