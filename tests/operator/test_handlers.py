"""Handlers driven directly with the kwargs kopf would pass, against fakes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import kopf
import pytest

from cast_core import room_metadata
from cast_operator import handlers, metrics
from tests.operator.conftest import (
    NAME,
    ROOM,
    START,
    World,
    call,
    conditions,
    link_body,
    presenters,
    streamer,
)

ADMIN = "0x" + "1" * 40
FOREIGN = "0x" + "f" * 40


def metadata(world: World) -> dict[str, Any]:
    return room_metadata.parse(world.rooms.rooms[ROOM])


async def test_create_syncs_presenters_keeping_foreign_keys_and_presenters(world: World) -> None:
    world.links.add(link_body(NAME, presenters=(ADMIN,)))
    world.rooms.set_metadata(ROOM, json.dumps({"presenters": [FOREIGN], "sceneAdmins": ["0xa"]}))
    world.rooms.join_link(ROOM, streamer(1), NAME)

    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))

    assert metadata(world) == {"presenters": [FOREIGN, ADMIN, streamer(1)], "sceneAdmins": ["0xa"]}
    status = world.links.bodies[NAME]["status"]
    assert status["syncedPresenters"] == [ADMIN, streamer(1)]
    assert status["observedGeneration"] == 1
    got = conditions(world)
    assert (got["Ready"]["status"], got["Ready"]["reason"]) == ("True", "Active")
    assert (got["Synced"]["status"], got["Synced"]["observedGeneration"]) == ("True", 1)
    assert (got["Expired"]["reason"], got["Revoked"]["reason"]) == ("NotExpired", "NotRevoked")


async def test_replayed_sync_writes_nothing(world: World) -> None:
    world.links.add(link_body(NAME, presenters=(ADMIN,)))
    world.rooms.join_link(ROOM, streamer(1), NAME)
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    writes = (world.rooms.metadata_writes, len(world.links.status_writes))

    world.clock.advance(600)
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))

    assert (world.rooms.metadata_writes, len(world.links.status_writes)) == writes


async def test_presenter_removed_from_spec_is_withdrawn_but_foreign_entry_kept(
    world: World,
) -> None:
    world.links.add(link_body(NAME, presenters=(ADMIN,)))
    world.rooms.set_metadata(ROOM, json.dumps({"presenters": [FOREIGN]}))
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    first = conditions(world)["Synced"]["lastTransitionTime"]

    world.clock.advance(60)
    world.links.change_spec(NAME, presenters=[])
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))

    assert presenters(world) == [FOREIGN]
    assert world.links.bodies[NAME]["status"]["syncedPresenters"] == []
    synced = conditions(world)["Synced"]
    assert synced["observedGeneration"] == 2
    assert synced["lastTransitionTime"] == first  # status unchanged: transition time kept


async def test_revocation_evicts_and_records_reason_once(world: World) -> None:
    world.links.add(link_body(NAME, presenters=(ADMIN,)))
    world.rooms.join_link(ROOM, streamer(1), NAME)
    world.rooms.join_link(ROOM, "presentation-bot:room:1", NAME)
    world.rooms.join(ROOM, "watch:room:1")
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    world.rooms.set_metadata(
        ROOM, json.dumps({"presenters": [*presenters(world), streamer(5), FOREIGN], "x": 1})
    )

    world.links.change_spec(NAME, revoked=True, revocationReason="Superseded")
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))

    assert sorted(i for _, i in world.rooms.evictions) == [
        "presentation-bot:room:1",
        streamer(1),
    ]
    assert list(world.rooms.members[ROOM]) == ["watch:room:1"]
    assert metadata(world) == {"presenters": [FOREIGN], "x": 1}
    got = conditions(world)
    assert (got["Ready"]["status"], got["Ready"]["reason"]) == ("False", "Revoked")
    assert (got["Revoked"]["status"], got["Revoked"]["reason"]) == ("True", "Superseded")
    assert got["Synced"]["observedGeneration"] == 2
    status = world.links.bodies[NAME]["status"]
    assert status["evictedParticipants"] == 2
    assert status["syncedPresenters"] == []
    assert world.events.reasons() == ["LinkRevoked"]

    # Replay (kopf retry, operator restart + resume): no second eviction, write or Event.
    writes = (world.rooms.metadata_writes, len(world.links.status_writes))
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    assert len(world.rooms.evictions) == 2
    assert (world.rooms.metadata_writes, len(world.links.status_writes)) == writes
    assert world.events.reasons() == ["LinkRevoked"]


async def test_resume_of_an_expired_link_finishes_it(world: World) -> None:
    world.links.add(link_body(NAME, expires=START - timedelta(minutes=1)))
    world.rooms.join_link(ROOM, streamer(1), NAME)

    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))

    assert [i for _, i in world.rooms.evictions] == [streamer(1)]
    assert conditions(world)["Expired"]["status"] == "True"
    assert world.events.reasons() == ["LinkExpired"]


async def test_delete_waits_for_livekit_then_cleans_up(world: World) -> None:
    body = world.links.add(link_body(NAME, presenters=(ADMIN,)))
    world.rooms.join_link(ROOM, streamer(1), NAME)
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    body["metadata"]["deletionTimestamp"] = "2026-03-01T12:30:00Z"

    world.rooms.down = True
    with pytest.raises(kopf.TemporaryError):
        await call(handlers.streamlink_delete, **world.kwargs(NAME))
    assert world.rooms.members[ROOM]  # nothing removed yet: the finalizer stays

    world.rooms.down = False
    await call(handlers.streamlink_delete, **world.kwargs(NAME))
    assert not world.rooms.members[ROOM]
    assert presenters(world) == []
    # Idempotent: a second run finds nothing left to do.
    writes = world.rooms.metadata_writes
    await call(handlers.streamlink_delete, **world.kwargs(NAME))
    assert world.rooms.metadata_writes == writes
    assert len(world.rooms.evictions) == 1


async def test_delete_of_a_cleaned_up_link_needs_no_livekit(world: World) -> None:
    world.links.add(link_body(NAME, revoked=True))
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    world.links.bodies[NAME]["metadata"]["deletionTimestamp"] = "2026-03-01T12:30:00Z"
    world.rooms.down = True
    calls = len(world.rooms.calls)
    await call(handlers.streamlink_delete, **world.kwargs(NAME))
    assert len(world.rooms.calls) == calls


async def test_livekit_down_is_temporary_and_recorded(world: World) -> None:
    world.links.add(link_body(NAME, presenters=(ADMIN,)))
    world.rooms.down = True
    before = metrics.LIVEKIT_ERRORS.labels(code="unavailable")._value.get()

    with pytest.raises(kopf.TemporaryError):
        await call(handlers.streamlink_reconcile, **world.kwargs(NAME))

    got = conditions(world)
    assert (got["Ready"]["status"], got["Ready"]["reason"]) == ("False", "LiveKitUnavailable")
    assert (got["Synced"]["status"], got["Synced"]["reason"]) == ("False", "LiveKitUnavailable")
    assert metrics.LIVEKIT_ERRORS.labels(code="unavailable")._value.get() == before + 1
    assert world.events.reasons() == ["LiveKitUnavailable"]

    world.rooms.down = False
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    got = conditions(world)
    assert (got["Ready"]["status"], got["Synced"]["status"]) == ("True", "True")


async def test_livekit_refusal_is_permanent_with_livekit_error_reason(world: World) -> None:
    world.links.add(link_body(NAME, presenters=(ADMIN,)))
    world.rooms.rejecting = True
    before = metrics.LIVEKIT_ERRORS.labels(code="rejected")._value.get()

    with pytest.raises(kopf.PermanentError):
        await call(handlers.streamlink_reconcile, **world.kwargs(NAME))

    got = conditions(world)
    assert (got["Ready"]["status"], got["Ready"]["reason"]) == ("False", "LiveKitError")
    assert metrics.LIVEKIT_ERRORS.labels(code="rejected")._value.get() == before + 1


async def test_stale_sync_never_overwrites_a_newer_revocation(world: World) -> None:
    world.links.add(link_body(NAME, presenters=(ADMIN,)))
    revoked_ready = {"type": "Ready", "status": "False", "reason": "Revoked", "message": ""}

    def revoke_meanwhile() -> None:
        # The link is revoked and the revocation recorded while the sync talks to LiveKit.
        world.links.change_spec(NAME, revoked=True)
        world.links.bodies[NAME]["status"]["conditions"] = [revoked_ready]
        world.links.bump(NAME)

    world.links.before_patch = revoke_meanwhile
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))

    assert world.links.bodies[NAME]["status"]["conditions"] == [revoked_ready]
    assert world.links.status_writes == []


async def test_status_conflict_is_retried_on_the_fresh_object(world: World) -> None:
    world.links.add(link_body(NAME, presenters=(ADMIN,)))
    world.links.conflict_once = True
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    assert conditions(world)["Synced"]["status"] == "True"
    assert len(world.links.status_writes) == 1


async def test_links_by_room_index(world: World) -> None:
    body = link_body(NAME)
    index = await call(handlers.links_by_room, body=body)
    assert list(index) == [ROOM]
    assert index[ROOM].name == NAME
    assert index[ROOM].body == {}  # the index keeps no copy of whole bodies
