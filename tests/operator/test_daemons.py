"""The expiry and ended-phase daemons, driven by a fake clock: sleeping moves time, never waits."""

from __future__ import annotations

import json
from datetime import timedelta

from cast_core import lifecycle as rules
from cast_core import room_metadata
from cast_operator import handlers
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

OTHER = "sl-aaaaaaaaaaaa-2"
ADMIN = "0x" + "1" * 40
FOREIGN = "0x" + "f" * 40


async def test_expiry_daemon_resyncs_then_ends_the_link_at_the_deadline(world: World) -> None:
    deadline = START + timedelta(minutes=5, seconds=17.25)
    world.links.add(link_body(NAME, expires=deadline, presenters=(ADMIN,)))
    world.links.add(link_body(OTHER, expires=deadline + timedelta(days=1)))
    world.rooms.set_metadata(ROOM, json.dumps({"presenters": [FOREIGN], "bannedAddresses": []}))
    world.rooms.join_link(ROOM, streamer(1), NAME)
    world.rooms.join_link(ROOM, "presentation-bot:room:1", NAME)
    world.rooms.join_link(ROOM, streamer(9), OTHER)  # live streamer of another usable link
    world.rooms.join(ROOM, "watch:room:1")
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    # A streamer of this link joins later: the periodic resync makes it a presenter.
    world.sleep.schedule(
        START + timedelta(seconds=100), lambda: world.rooms.join_link(ROOM, streamer(2), NAME)
    )
    world.sleep.schedule(  # ...and a stale identity of this place was left in the metadata
        START + timedelta(seconds=200),
        lambda: world.rooms.set_metadata(
            ROOM, json.dumps({"presenters": [*presenters(world), streamer(7)], "x": 1})
        ),
    )

    await call(handlers.streamlink_expiry, **world.daemon_kwargs(NAME))

    assert any(streamer(2) in w.get("syncedPresenters", ()) for _, w in world.links.status_writes)
    first_eviction = min(when for when, _ in world.rooms.evictions)
    deadline = world.link(NAME).expiration_time  # stored with second precision
    assert timedelta(0) <= first_eviction - deadline < timedelta(seconds=2)
    assert max(world.sleep.calls) <= 60  # the deadline is re-read at least every minute
    assert sorted(i for _, i in world.rooms.evictions) == [
        "presentation-bot:room:1",
        streamer(1),
        streamer(2),
    ]
    assert sorted(world.rooms.members[ROOM]) == [streamer(9), "watch:room:1"]
    meta = room_metadata.parse(world.rooms.rooms[ROOM])
    assert meta["presenters"] == [FOREIGN]
    assert meta["x"] == 1
    got = conditions(world)
    assert (got["Expired"]["status"], got["Expired"]["reason"]) == ("True", "Expired")
    assert (got["Ready"]["status"], got["Ready"]["reason"]) == ("False", "Expired")
    assert world.links.bodies[NAME]["status"]["evictedParticipants"] == 3
    assert world.events.reasons() == ["LinkExpired"]
    assert not rules.in_active_phase(world.link(NAME))  # kopf now stops this daemon


async def test_resync_repairs_drift_after_a_livekit_restart(world: World) -> None:
    world.links.add(link_body(NAME, presenters=(ADMIN,)))
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    writes = len(world.links.status_writes)

    def livekit_restarted() -> None:
        world.rooms.rooms[ROOM] = json.dumps({"sceneAdmins": ["0xa"]})  # recreated, no presenters

    world.sleep.schedule(START + timedelta(seconds=10), livekit_restarted)
    world.sleep.schedule(
        START + timedelta(seconds=75), lambda: setattr(world.stopped, "flag", True)
    )
    await call(handlers.streamlink_expiry, **world.daemon_kwargs(NAME))

    assert room_metadata.parse(world.rooms.rooms[ROOM]) == {
        "sceneAdmins": ["0xa"],
        "presenters": [ADMIN],
    }
    assert len(world.links.status_writes) == writes  # repaired LiveKit; status had not changed
    assert world.rooms.evictions == []


async def test_daemon_of_a_revoked_link_exits_without_side_effects(world: World) -> None:
    world.links.add(link_body(NAME, revoked=True))
    world.rooms.join_link(ROOM, streamer(1), NAME)
    await call(handlers.streamlink_expiry, **world.daemon_kwargs(NAME))
    assert world.rooms.calls == []


async def test_livekit_down_at_the_deadline_then_aftercare_sweeps_and_deletes() -> None:
    world = World(retention=3600)
    deadline = START + timedelta(seconds=60)
    world.links.add(link_body(NAME, expires=deadline, presenters=(ADMIN,)))
    world.rooms.join_link(ROOM, streamer(1), NAME)
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    world.sleep.schedule(
        deadline - timedelta(seconds=1), lambda: setattr(world.rooms, "down", True)
    )

    await call(handlers.streamlink_expiry, **world.daemon_kwargs(NAME))

    got = conditions(world)
    assert got["Expired"]["status"] == "True"
    assert (got["Synced"]["status"], got["Synced"]["reason"]) == ("False", "LiveKitUnavailable")
    assert world.events.reasons() == ["LiveKitUnavailable", "LinkExpired"]
    assert not rules.cleanup_complete(world.link(NAME))
    assert rules.in_ended_phase(world.link(NAME))

    # The ended-phase daemon takes over: retries until LiveKit is back, then sweeps once after
    # the token TTL (a token minted just before the deadline could still join), then deletes.
    back = world.clock.now() + timedelta(seconds=40)
    world.sleep.schedule(back, lambda: setattr(world.rooms, "down", False))
    late = deadline + timedelta(seconds=200)
    world.sleep.schedule(late, lambda: world.rooms.join_link(ROOM, streamer(3), NAME))

    await call(handlers.streamlink_aftercare, **world.daemon_kwargs(NAME))

    evicted = dict((identity, when) for when, identity in world.rooms.evictions)
    assert back <= evicted[streamer(1)] < back + timedelta(seconds=60)
    sweep = deadline + rules.SWEEP_DELAY
    assert sweep <= evicted[streamer(3)] < sweep + timedelta(seconds=2)
    assert rules.cleanup_complete(world.link(NAME))
    assert world.links.deleted == [(NAME, f"uid-{NAME}")]
    assert deadline + timedelta(seconds=3600) <= world.clock.now()
    assert world.clock.now() < deadline + timedelta(seconds=3602)
    assert world.events.reasons() == ["LiveKitUnavailable", "LinkExpired"]  # no duplicates


async def test_aftercare_of_a_cleaned_link_only_waits_for_retention() -> None:
    world = World(retention=7 * 86400)
    world.links.add(link_body(NAME, revoked=True, reason="Superseded"))
    await call(handlers.streamlink_reconcile, **world.kwargs(NAME))
    world.clock.advance(3600)  # an operator restart long after the revocation
    calls = len(world.rooms.calls)

    await call(handlers.streamlink_aftercare, **world.daemon_kwargs(NAME))

    assert len(world.rooms.calls) == calls  # nothing left to clean: no LiveKit traffic
    assert world.links.deleted == [(NAME, f"uid-{NAME}")]
    assert world.clock.now() >= START + timedelta(days=7)


async def test_daemons_stop_when_kopf_says_so(world: World) -> None:
    world.links.add(link_body(NAME, expires=START + timedelta(days=4)))
    world.stopped.flag = True
    await call(handlers.streamlink_expiry, **world.daemon_kwargs(NAME))
    world.links.add(link_body(OTHER, revoked=True))
    await call(handlers.streamlink_aftercare, **world.daemon_kwargs(OTHER))
    assert world.sleep.calls == []
