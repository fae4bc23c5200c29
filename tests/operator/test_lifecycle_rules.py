from datetime import timedelta

from cast_core import conditions as cond
from cast_core import lifecycle as rules
from cast_core import room_metadata
from cast_core.grants import LINK_ATTRIBUTE
from cast_core.livekit_rooms import Participant
from cast_core.model import StreamLink, format_time
from tests.operator.conftest import START, link_body, streamer

ME = "sl-aaaaaaaaaaaa-1"
OTHER = "sl-aaaaaaaaaaaa-2"
ADMIN = "0x" + "1" * 40
FOREIGN = "0x" + "f" * 40


def of(link: str, identity: str) -> Participant:
    return Participant(identity, {LINK_ATTRIBUTE: link})


def make(**kwargs: object) -> StreamLink:
    return StreamLink.from_body(link_body(**kwargs))  # type: ignore[arg-type]


def test_presenter_plan_adds_spec_and_live_streamers_and_removes_only_what_we_added() -> None:
    link = make(
        name=ME,
        presenters=(ADMIN,),
        status={"syncedPresenters": [ADMIN, streamer(1), "0x" + "2" * 40]},
    )
    participants = [
        of(ME, streamer(2)),  # live streamer of this link
        of(ME, "presentation-bot:room:x"),  # bots are not presenters
        of(OTHER, streamer(3)),  # another link's streamer
        Participant("watch:room:y"),
    ]
    plan = rules.presenter_plan(link, participants)
    assert plan.wanted == (ADMIN, streamer(2))
    assert plan.stale == (streamer(1), "0x" + "2" * 40)

    metadata = {
        "presenters": [FOREIGN, streamer(1), "0x" + "2" * 40, streamer(9)],
        "bannedAddresses": ["0xbad"],
    }
    out = plan.apply(metadata)
    assert out["presenters"] == [FOREIGN, streamer(9), ADMIN, streamer(2)]
    assert out["bannedAddresses"] == ["0xbad"]


def test_presenter_plan_keeps_what_another_usable_link_wants() -> None:
    link = make(name=ME, status={"syncedPresenters": [ADMIN]})
    peer = make(name=OTHER, presenters=(ADMIN,))
    assert rules.presenter_plan(link, [], [peer], START).stale == ()
    expired_peer = make(name=OTHER, presenters=(ADMIN,), expires=START)
    assert rules.presenter_plan(link, [], [expired_peer], START).stale == (ADMIN,)


def test_presenter_plan_without_presenters_does_not_touch_metadata() -> None:
    plan = rules.presenter_plan(make(name=ME), [])
    metadata = {"sceneAdmins": ["0xabc"]}
    assert plan.apply(metadata) is metadata


def test_end_plan_evicts_link_participants_and_withdraws_presenters() -> None:
    now = START
    link = make(name=ME, presenters=(ADMIN,), status={"syncedPresenters": [ADMIN, streamer(1)]})
    peer = make(name=OTHER, presenters=("0x" + "3" * 40,))
    participants = [
        of(ME, streamer(1)),
        of(ME, "presentation-bot:room:b"),
        of(OTHER, streamer(2)),
        Participant("watch:room:w"),
        Participant(FOREIGN),
    ]
    plan = rules.end_plan(link, participants, [link, peer], now)
    assert plan.evict == (streamer(1), "presentation-bot:room:b")

    metadata = {
        "presenters": [
            FOREIGN,  # someone else's presenter
            ADMIN,  # ours
            streamer(1),  # ours, live
            streamer(2),  # live streamer of the other, usable link: kept
            streamer(7),  # stale streamer identity of this place: withdrawn
            streamer(8, place="place-2"),  # another place's streamer: not ours
            "0x" + "3" * 40,  # wanted by the other link
        ],
        "sceneAdmins": ["0xabc"],
    }
    out = plan.apply(metadata)
    assert out["presenters"] == [
        FOREIGN,
        streamer(2),
        streamer(8, place="place-2"),
        "0x" + "3" * 40,
    ]
    assert out["sceneAdmins"] == ["0xabc"]


def test_end_plan_does_not_protect_an_unusable_peer() -> None:
    link = make(name=ME)
    expired_peer = make(name=OTHER, expires=START - timedelta(seconds=1))
    participants = [of(OTHER, streamer(2))]
    plan = rules.end_plan(link, participants, [expired_peer], START)
    out = plan.apply({"presenters": [streamer(2)]})
    assert out["presenters"] == []


def test_end_plan_is_a_fixed_point() -> None:
    link = make(name=ME, status={"syncedPresenters": [ADMIN]})
    plan = rules.end_plan(link, [], [], START)
    once = plan.apply({"presenters": [ADMIN, FOREIGN]})
    assert plan.apply(once) is once
    assert room_metadata.presenters(once) == [FOREIGN]


def test_conditions_of_a_usable_link() -> None:
    link = make(name=ME)
    wanted = {c.type: c for c in rules.active_conditions(link, rules.LiveKitState.OK)}
    assert (wanted["Ready"].status, wanted["Ready"].reason) == ("True", "Active")
    assert (wanted["Expired"].status, wanted["Expired"].reason) == ("False", "NotExpired")
    assert (wanted["Revoked"].status, wanted["Revoked"].reason) == ("False", "NotRevoked")
    assert (wanted["Synced"].status, wanted["Synced"].reason) == ("True", "Synced")
    down = {c.type: c for c in rules.active_conditions(link, rules.LiveKitState.UNAVAILABLE)}
    assert (down["Ready"].status, down["Ready"].reason) == ("False", "LiveKitUnavailable")
    assert (down["Synced"].status, down["Synced"].reason) == ("False", "LiveKitUnavailable")
    refused = {c.type: c for c in rules.active_conditions(link, rules.LiveKitState.REJECTED)}
    assert refused["Ready"].reason == "LiveKitError"


def test_conditions_of_an_ended_link() -> None:
    expired = make(name=ME, expires=START)
    wanted = {c.type: c for c in rules.ended_conditions(expired, START, rules.LiveKitState.OK)}
    assert (wanted["Ready"].status, wanted["Ready"].reason) == ("False", "Expired")
    assert (wanted["Expired"].status, wanted["Expired"].reason) == ("True", "Expired")
    assert wanted["Revoked"].reason == "NotRevoked"

    revoked = make(name=ME, revoked=True, reason="Superseded")
    wanted = {c.type: c for c in rules.ended_conditions(revoked, START, rules.LiveKitState.OK)}
    assert (wanted["Ready"].status, wanted["Ready"].reason) == ("False", "Revoked")
    assert (wanted["Revoked"].status, wanted["Revoked"].reason) == ("True", "Superseded")
    assert wanted["Expired"].reason == "NotExpired"
    plain = make(name=ME, revoked=True)
    assert rules.revocation_reason(plain) == "Revoked"


def test_status_change_is_none_when_nothing_changes() -> None:
    link = make(name=ME)
    first = rules.status_change(
        link, rules.active_conditions(link, rules.LiveKitState.OK), START, synced_presenters=[]
    )
    assert first is not None
    assert first.became_true == {"Ready", "Synced"}
    stored = StreamLink.from_body(link_body(name=ME, status=first.patch))
    later = START + timedelta(minutes=1)
    again = rules.status_change(
        stored, rules.active_conditions(stored, rules.LiveKitState.OK), later, synced_presenters=[]
    )
    assert again is None


def test_cleanup_complete_needs_terminal_condition_and_synced_for_this_generation() -> None:
    now = START + timedelta(hours=2)
    expired = make(name=ME, expires=START)
    assert not rules.cleanup_complete(expired)
    change = rules.status_change(
        expired, rules.ended_conditions(expired, now, rules.LiveKitState.OK), now
    )
    assert change is not None
    done = make(name=ME, expires=START, status=change.patch)
    assert rules.cleanup_complete(done)
    assert not rules.in_active_phase(done)
    assert rules.in_ended_phase(done)
    # A later spec change (new generation) makes the cleanup run again.
    bumped = make(name=ME, expires=START, status=change.patch, generation=2)
    assert not rules.cleanup_complete(bumped)


def test_retention_decision() -> None:
    retention = 3600.0
    active = make(name=ME, expires=START + timedelta(hours=1))
    assert not rules.retention_due(active, START, retention)

    expired = make(name=ME, expires=START)
    assert not rules.retention_due(expired, START + timedelta(minutes=59), retention)
    assert rules.retention_due(expired, START + timedelta(hours=1), retention)

    revoked_at = START + timedelta(minutes=10)
    revoked = make(
        name=ME,
        revoked=True,
        status={
            "conditions": [
                {
                    "type": cond.REVOKED,
                    "status": "True",
                    "reason": "Revoked",
                    "message": "",
                    "lastTransitionTime": format_time(revoked_at),
                }
            ]
        },
    )
    assert not rules.retention_due(revoked, revoked_at + timedelta(minutes=59), retention)
    assert rules.retention_due(revoked, revoked_at + timedelta(hours=1), retention)

    body = link_body(name=ME, expires=START)
    body["metadata"]["deletionTimestamp"] = format_time(START)
    assert not rules.retention_due(StreamLink.from_body(body), START + timedelta(days=9), retention)
