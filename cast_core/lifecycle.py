"""Pure lifecycle rules of a StreamLink: conditions, presenter sync, end of link, retention.

The operator feeds these with the link, the time and what LiveKit reports, then carries out the
plan. Nothing here talks to Kubernetes or LiveKit, so every rule is testable without either.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cast_core import conditions as cond
from cast_core import room_metadata
from cast_core.grants import LINK_ATTRIBUTE, TOKEN_TTL_SECONDS
from cast_core.identities import streamer_prefix
from cast_core.livekit_rooms import Participant
from cast_core.model import StreamLink, format_time, parse_time

STREAMER_PREFIX = "stream:"
DEFAULT_REVOCATION_REASON = "Revoked"
# A token minted just before the end can still be used to join for TOKEN_TTL: sweep once after.
SWEEP_DELAY = timedelta(seconds=TOKEN_TTL_SECONDS + 5)


class LiveKitState(StrEnum):
    OK = "ok"
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"


# ---- who belongs to a link ---------------------------------------------------------------------


def link_participants(link_name: str, participants: Iterable[Participant]) -> list[str]:
    """Streamers and presentation bots whose token was minted for this link."""
    return [p.identity for p in participants if p.attributes.get(LINK_ATTRIBUTE) == link_name]


def live_streamers(link_name: str, participants: Iterable[Participant]) -> list[str]:
    return [i for i in link_participants(link_name, participants) if i.startswith(STREAMER_PREFIX)]


# ---- presenter sync ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PresenterPlan:
    wanted: tuple[str, ...]  # spec.presenters + live streamers: also the new syncedPresenters
    stale: tuple[str, ...]  # added by this link before and no longer wanted

    def apply(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Converge the room metadata; other keys and other writers' presenters are kept."""
        out = metadata
        if self.wanted:
            out = room_metadata.with_presenters_added(out, self.wanted)
        if self.stale:
            out = room_metadata.with_presenters_removed(out, self.stale)
        return out


def presenter_plan(
    link: StreamLink,
    participants: Sequence[Participant],
    peers: Iterable[StreamLink] = (),
    now: datetime | None = None,
) -> PresenterPlan:
    wanted = tuple(dict.fromkeys([*link.presenters, *live_streamers(link.name, participants)]))
    keep = set(wanted) | (wanted_by_peers(link, participants, peers, now) if now else set())
    stale = tuple(p for p in link.synced_presenters if p not in keep)
    return PresenterPlan(wanted=wanted, stale=stale)


def wanted_by_peers(
    link: StreamLink,
    participants: Sequence[Participant],
    peers: Iterable[StreamLink],
    now: datetime,
) -> set[str]:
    """Presenters other usable links of the room still want: never withdrawn on their behalf."""
    wanted: set[str] = set()
    for peer in peers:
        if peer.name == link.name or not peer.usable(now):
            continue
        wanted.update(peer.presenters)
        wanted.update(peer.synced_presenters)
        wanted.update(live_streamers(peer.name, participants))
    return wanted


# ---- end of a link (expired, revoked or deleted) -----------------------------------------------


@dataclass(frozen=True)
class EndPlan:
    evict: tuple[str, ...]
    owned: frozenset[str]  # presenters this link put (or asked to put) into the metadata
    streamer_prefix: str  # stream:{placeId}: entries, added by the API at token time
    protected: frozenset[str] = field(default_factory=frozenset)  # wanted by other usable links

    def withdrawn(self, presenter: str) -> bool:
        if presenter in self.protected:
            return False
        return presenter in self.owned or presenter.startswith(self.streamer_prefix)

    def apply(self, metadata: dict[str, Any]) -> dict[str, Any]:
        gone = [p for p in room_metadata.presenters(metadata) if self.withdrawn(p)]
        return room_metadata.with_presenters_removed(metadata, gone) if gone else metadata


def end_plan(
    link: StreamLink,
    participants: Sequence[Participant],
    peers: Iterable[StreamLink],
    now: datetime,
) -> EndPlan:
    """Evict this link's participants and withdraw its presenters and the place's stale streamer
    identities (reference §19.15), keeping whatever another usable link of the room still wants."""
    return EndPlan(
        evict=tuple(link_participants(link.name, participants)),
        owned=frozenset(link.synced_presenters) | frozenset(link.presenters),
        streamer_prefix=streamer_prefix(link.place.id),
        protected=frozenset(wanted_by_peers(link, participants, peers, now)),
    )


# ---- conditions --------------------------------------------------------------------------------


def revocation_reason(link: StreamLink) -> str:
    return link.revocation_reason or DEFAULT_REVOCATION_REASON


def livekit_reason(livekit: LiveKitState) -> str:
    return "LiveKitError" if livekit is LiveKitState.REJECTED else "LiveKitUnavailable"


def _livekit_problem(livekit: LiveKitState, message: str) -> tuple[str, str]:
    if livekit is LiveKitState.REJECTED:
        return livekit_reason(livekit), message or "LiveKit refused the request"
    return livekit_reason(livekit), message or "LiveKit could not be reached"


def active_conditions(
    link: StreamLink, livekit: LiveKitState, message: str = ""
) -> list[cond.Condition]:
    """Conditions of a usable link after a presenter sync attempt."""
    until = format_time(link.expiration_time)
    if livekit is LiveKitState.OK:
        ready = cond.Condition(cond.READY, cond.TRUE, "Active", f"usable until {until}")
        synced = cond.Condition(cond.SYNCED, cond.TRUE, "Synced", "room presenters in sync")
    else:
        reason, text = _livekit_problem(livekit, message)
        ready = cond.Condition(cond.READY, cond.FALSE, reason, text)
        synced = cond.Condition(cond.SYNCED, cond.FALSE, reason, text)
    return [
        ready,
        cond.Condition(cond.EXPIRED, cond.FALSE, "NotExpired", f"expires at {until}"),
        cond.Condition(cond.REVOKED, cond.FALSE, "NotRevoked", "not revoked"),
        synced,
    ]


def ended_conditions(
    link: StreamLink, now: datetime, livekit: LiveKitState, message: str = ""
) -> list[cond.Condition]:
    """Conditions of an expired or revoked link after an end-of-link attempt."""
    expired = link.expired(now)
    at = format_time(link.expiration_time)
    if link.revoked:
        reason = revocation_reason(link)
        ready = cond.Condition(cond.READY, cond.FALSE, "Revoked", f"revoked ({reason})")
        revoked = cond.Condition(cond.REVOKED, cond.TRUE, reason, f"revoked ({reason})")
    else:
        ready = cond.Condition(cond.READY, cond.FALSE, "Expired", f"expired at {at}")
        revoked = cond.Condition(cond.REVOKED, cond.FALSE, "NotRevoked", "not revoked")
    if expired:
        expiry = cond.Condition(cond.EXPIRED, cond.TRUE, "Expired", f"expired at {at}")
    else:
        expiry = cond.Condition(cond.EXPIRED, cond.FALSE, "NotExpired", f"expires at {at}")
    if livekit is LiveKitState.OK:
        synced = cond.Condition(
            cond.SYNCED, cond.TRUE, "Synced", "participants removed and presenters withdrawn"
        )
    else:
        reason, text = _livekit_problem(livekit, message)
        synced = cond.Condition(cond.SYNCED, cond.FALSE, reason, text)
    return [ready, expiry, revoked, synced]


# ---- status writes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusChange:
    patch: dict[str, Any]  # JSON merge patch of .status
    became_true: frozenset[str]  # condition types that flipped to True with this change


def status_change(
    link: StreamLink,
    wanted: Iterable[cond.Condition],
    now: datetime,
    *,
    synced_presenters: Sequence[str] | None = None,
    evicted: int = 0,
) -> StatusChange | None:
    """The status patch that moves `link` to `wanted`, or None when it is already there (so an
    unchanged resync writes nothing)."""
    wanted = list(wanted)
    old = [dict(c) for c in link.conditions]
    new = cond.set_conditions(old, wanted, observed_generation=link.generation, now=now)
    status: Mapping[str, Any] = link.body.get("status") or {}
    patch: dict[str, Any] = {}
    if new != old:
        patch["conditions"] = new
    if synced_presenters is not None and list(synced_presenters) != list(link.synced_presenters):
        patch["syncedPresenters"] = list(synced_presenters)
    if evicted:
        patch["evictedParticipants"] = int(status.get("evictedParticipants") or 0) + evicted
    if patch and status.get("observedGeneration") != link.generation:
        patch["observedGeneration"] = link.generation
    if not patch:
        return None
    became_true = frozenset(
        c.type for c in wanted if c.status == cond.TRUE and not cond.is_true(old, c.type)
    )
    return StatusChange(patch=patch, became_true=became_true)


# ---- which phase a link is in ------------------------------------------------------------------


def ended(link: StreamLink, now: datetime) -> bool:
    return link.revoked or link.expired(now)


def in_active_phase(link: StreamLink) -> bool:
    """Filter of the expiry daemon: Expired=True is only written once the end plan has run."""
    return (
        not link.revoked and not link.deleting and not cond.is_true(link.conditions, cond.EXPIRED)
    )


def in_ended_phase(link: StreamLink) -> bool:
    return not link.deleting and (link.revoked or cond.is_true(link.conditions, cond.EXPIRED))


def cleanup_complete(link: StreamLink) -> bool:
    """The end plan succeeded for this generation: terminal condition and Synced both True."""
    terminal = cond.REVOKED if link.revoked else cond.EXPIRED
    synced = cond.find(link.conditions, cond.SYNCED)
    return (
        cond.is_true(link.conditions, terminal)
        and synced is not None
        and synced.get("status") == cond.TRUE
        and synced.get("observedGeneration") == link.generation
    )


def revoked_at(link: StreamLink) -> datetime | None:
    found = cond.find(link.conditions, cond.REVOKED)
    if found is None or found.get("status") != cond.TRUE or not found.get("lastTransitionTime"):
        return None
    return parse_time(str(found["lastTransitionTime"]))


def ended_at(link: StreamLink, now: datetime) -> datetime | None:
    """When the link stopped being usable (a revocation not yet recorded counts from now)."""
    times: list[datetime] = []
    if link.expired(now):
        times.append(link.expiration_time)
    if link.revoked:
        times.append(revoked_at(link) or now)
    return min(times) if times else None


def deletion_time(link: StreamLink, now: datetime, retention: float) -> datetime | None:
    end = ended_at(link, now)
    return None if end is None else end + timedelta(seconds=retention)


def retention_due(link: StreamLink, now: datetime, retention: float) -> bool:
    """Expired or revoked links are deleted once they have been over for `retention` seconds."""
    when = deletion_time(link, now, retention)
    return when is not None and not link.deleting and now >= when


def seconds_until(when: datetime, now: datetime) -> float:
    return (when - now).total_seconds()


def peers_in_room(index: Mapping[str, Collection[StreamLink]], room: str) -> list[StreamLink]:
    return list(index.get(room, ()))
