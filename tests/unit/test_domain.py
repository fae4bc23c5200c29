"""Keys, rooms, identities, grants and room-metadata rules."""

from __future__ import annotations

import json
from datetime import timedelta

import jwt
import pytest
from livekit import api

from cast_core import room_metadata as rm
from cast_core.grants import Credentials, Role, mint_token
from cast_core.identities import normalize_presenter
from cast_core.keys import SigningKeys, link_name_from_key
from cast_core.model import link_name, place_label
from cast_core.rooms import is_world_hostname, room_for, room_label

CREDS = Credentials("devkey", "a-livekit-secret-of-at-least-32-chars")


# ---- keys ------------------------------------------------------------------------------------
def test_key_round_trip_and_binding() -> None:
    keys = SigningKeys.from_setting("x" * 32)
    name = link_name("place-1", 3)
    key = keys.streaming_key(name, "uid-1")
    assert link_name_from_key(key) == name
    assert keys.verify(key, name, "uid-1")
    assert not keys.verify(key, name, "uid-2")  # recreated object: new uid, old key dead
    assert not keys.verify(key, link_name("place-1", 4), "uid-1")
    assert not SigningKeys.from_setting("y" * 32).verify(key, name, "uid-1")


def test_rotation_first_signs_all_verify() -> None:
    old = SigningKeys.from_setting("o" * 32)
    both = SigningKeys.from_setting(f"{'n' * 32}, {'o' * 32}")
    name = link_name("p", 1)
    assert both.verify(old.streaming_key(name, "u"), name, "u")
    assert both.streaming_key(name, "u") == SigningKeys.from_setting("n" * 32).streaming_key(
        name, "u"
    )


@pytest.mark.parametrize("setting", ["", "short", "x" * 31, " , "])
def test_weak_signing_keys_refused(setting: str) -> None:
    with pytest.raises(ValueError):
        SigningKeys.from_setting(setting)


def test_signing_keys_never_printed() -> None:
    assert "x" * 32 not in repr(SigningKeys.from_setting("x" * 32))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "cast2-link-abc123",
        "0123456789ab-1",
        "0123456789ab-0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "0123456789AB-1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "0123456789ab-1.AAAA",
        "../../etc-1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "0123456789ab-1." + "A" * 200,
    ],
)
def test_malformed_keys_name_no_link(key: str) -> None:
    assert link_name_from_key(key) is None


# ---- rooms -----------------------------------------------------------------------------------
def test_room_formulas() -> None:
    scene = room_for(
        scene_prefix="scene-",
        world_prefix="w-",
        is_world=False,
        realm_name="test-realm",
        scene_id="test-scene",
    )
    assert scene == "scene-test-realm:test-scene"
    world = room_for(
        scene_prefix="scene-",
        world_prefix="world-prod-scene-room-",
        is_world=True,
        realm_name="test-world",
        scene_id="bafkreiabcdef123",
    )
    assert world == "world-prod-scene-room-test-world-bafkreiabcdef123"
    assert is_world_hostname("https://worlds-content-server.decentraland.org")
    assert not is_world_hostname("https://peer.decentraland.org")


def test_labels_are_label_safe() -> None:
    assert len(room_label("scene-" + "x" * 500)) <= 63
    assert place_label("4f3c2a1b-aaaa-bbbb-cccc-000000000000") == (
        "4f3c2a1b-aaaa-bbbb-cccc-000000000000"
    )
    weird = place_label("a place/with:odd chars")
    assert weird.startswith("h-") and len(weird) <= 63


# ---- identities ------------------------------------------------------------------------------
def test_presenter_identities() -> None:
    assert normalize_presenter("0xABCDEF0123456789abcdef0123456789ABCDEF01") == (
        "0xabcdef0123456789abcdef0123456789abcdef01"
    )
    streamer = "stream:place-123:a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert normalize_presenter(streamer) == streamer
    for bad in [
        "watch:r:a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        "presentation-bot:r:a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        "stream:a:b:a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        "0x123",
        "",
    ]:
        assert normalize_presenter(bad) is None


# ---- grants ----------------------------------------------------------------------------------
def _decode(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims


@pytest.mark.parametrize("role", list(Role))
def test_tokens_match_livekit_access_token(role: Role) -> None:
    """Our minted JWT carries exactly the claims livekit-api's AccessToken would."""
    ours = mint_token(
        CREDS,
        role=role,
        identity="id-1",
        room="room-1",
        display_name="Ann",
        link_name="sl-x-1",
    )
    grants = _decode(ours)["video"]
    assert isinstance(grants, dict)
    reference = (
        api.AccessToken(CREDS.api_key, CREDS.api_secret)
        .with_identity("id-1")
        .with_ttl(timedelta(seconds=300))
        .with_metadata(json.loads(json.dumps(_decode(ours)["metadata"])))
        .with_attributes({"cast.link": "sl-x-1"})
        .with_grants(
            api.VideoGrants(
                room_join=grants["roomJoin"],
                room=grants["room"],
                room_list=grants["roomList"],
                can_publish=grants["canPublish"],
                can_subscribe=grants["canSubscribe"],
                can_publish_data=grants["canPublishData"],
                can_update_own_metadata=grants["canUpdateOwnMetadata"],
                can_publish_sources=grants.get("canPublishSources"),
            )
        )
    )
    if role is not Role.PRESENTATION_BOT:
        reference = reference.with_name("Ann")
    theirs = _decode(reference.to_jwt())
    mine = _decode(ours)
    for claims in (theirs, mine):
        claims.pop("nbf"), claims.pop("exp")
    assert mine == theirs
    verified = api.TokenVerifier(CREDS.api_key, CREDS.api_secret).verify(ours)
    assert verified.identity == "id-1"


def test_token_lifetime_and_signature() -> None:
    token = mint_token(CREDS, role=Role.WATCHER, identity="w", room="r", now=1000)
    claims = jwt.decode(
        token,
        CREDS.api_secret,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_nbf": False},
    )
    assert (claims["nbf"], claims["exp"], claims["iss"]) == (1000, 1300, "devkey")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-another-secret-xx", algorithms=["HS256"])


@pytest.mark.parametrize(
    ("role", "publish", "update_md", "sources"),
    [
        (Role.STREAMER, True, True, None),
        (Role.WATCHER, False, False, ["microphone"]),
        (Role.PRESENTATION_BOT, True, False, None),
    ],
)
def test_grants_per_role(
    role: Role, publish: bool, update_md: bool, sources: list[str] | None
) -> None:
    token = mint_token(CREDS, role=role, identity="i", room="r", display_name="d")
    video = api.TokenVerifier(CREDS.api_key, CREDS.api_secret).verify(token).video
    assert video is not None
    assert (video.room_join, video.room, video.room_list) == (True, "r", False)
    assert (video.can_publish, video.can_subscribe, video.can_publish_data) == (publish, True, True)
    assert bool(video.can_update_own_metadata) is update_md
    assert (list(video.can_publish_sources) if video.can_publish_sources else None) == sources
    assert not video.room_admin and not video.room_create and not video.hidden


# ---- room metadata ---------------------------------------------------------------------------
def test_metadata_rules_keep_foreign_keys() -> None:
    md = rm.parse(json.dumps({"bannedAddresses": ["0xbad"], "presenters": ["a"]}))
    added = rm.with_presenters_added(md, ["b", "a", "b"])
    assert added == {"bannedAddresses": ["0xbad"], "presenters": ["a", "b"]}
    assert rm.with_presenters_removed(added, ["a", "zz"]) == {
        "bannedAddresses": ["0xbad"],
        "presenters": ["b"],
    }
    assert rm.with_presenters_removed(md, ["zz"]) is md  # unchanged: no write needed
    for raw in [None, "", "nope", "[1]", "42"]:
        assert rm.parse(raw) == {}
    assert rm.presenters({"presenters": ["a", 3, None]}) == ["a"]
