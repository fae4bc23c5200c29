"""Carrying out the lifecycle plans of cast_core.lifecycle against LiveKit and the apiserver.

Everything is level-based: each step derives what to do from the link, the time and what LiveKit
reports now, so a replay after a restart (or a handler retried by kopf) repeats no side effect —
participants already gone are not evicted again, unchanged metadata and status are not written,
and Events are posted only when a condition actually flips.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from typing import Any

import kopf

from cast_core import conditions as cond
from cast_core import lifecycle as rules
from cast_core.livekit_rooms import LiveKitRejected, LiveKitUnavailable
from cast_core.model import StreamLink
from cast_core.store import Conflict, NotFound, StoreUnavailable
from cast_operator import metrics
from cast_operator.runtime import Runtime

Index = Mapping[str, Collection[StreamLink]]  # kopf index links_by_room: room -> links
LiveKitError = (LiveKitUnavailable, LiveKitRejected)

WRITE_ATTEMPTS = 3
MAX_SLEEP = 60.0  # re-read the link at least this often while waiting
MIN_SLEEP = 1.0  # the ended phase has no deadline to hit: never spin
ENDED_MAX_SLEEP = 600.0  # ended links only wait for the sweep and retention deadlines
BACKOFF_START = 2.0
BACKOFF_MAX = 300.0
EVENTS_ON_TRUE = {cond.EXPIRED: "LinkExpired", cond.REVOKED: "LinkRevoked"}


def snapshot(body: Mapping[str, Any]) -> StreamLink:
    return StreamLink.from_body(dict(body))


def error_code(exc: Exception) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    return "rejected" if isinstance(exc, LiveKitRejected) else "unavailable"


def livekit_state(exc: Exception) -> rules.LiveKitState:
    if isinstance(exc, LiveKitRejected):
        return rules.LiveKitState.REJECTED
    return rules.LiveKitState.UNAVAILABLE


async def write_status(
    rt: Runtime,
    body: Mapping[str, Any],
    change: Callable[[StreamLink], rules.StatusChange | None],
) -> rules.StatusChange | None:
    """Apply `change` to the freshest status with optimistic concurrency.

    `change` sees the link as stored and returns None when there is nothing to write, so a stale
    view never overwrites a newer state (e.g. a resync racing a revocation).
    """
    current: Mapping[str, Any] = body
    for _ in range(WRITE_ATTEMPTS):
        link = snapshot(current)
        if link.deleting:
            return None
        wanted = change(link)
        if wanted is None:
            return None
        try:
            await rt.links.patch_status(
                link.name, wanted.patch, resource_version=link.resource_version
            )
        except NotFound:
            return None
        except Conflict:
            fresh = await rt.links.get(link.name)
            if fresh is None:
                return None
            current = fresh
            continue
        return wanted
    raise StoreUnavailable("StreamLink status kept changing; will retry")


async def _record_failure(
    rt: Runtime, body: Mapping[str, Any], exc: Exception, *, ending: bool
) -> None:
    metrics.livekit_error(error_code(exc))
    state = livekit_state(exc)
    now = rt.clock.now()

    def change(link: StreamLink) -> rules.StatusChange | None:
        if ending and rules.ended(link, now):
            return rules.status_change(
                link, rules.ended_conditions(link, now, state, str(exc)), now
            )
        if not ending and link.usable(now):
            return rules.status_change(link, rules.active_conditions(link, state, str(exc)), now)
        return None

    written = await write_status(rt, body, change)
    if written is not None and "conditions" in written.patch:
        rt.events(body, "Warning", rules.livekit_reason(state), str(exc))
        _post_transitions(rt, body, written, evicted=0)


def _post_transitions(
    rt: Runtime, body: Mapping[str, Any], written: rules.StatusChange, *, evicted: int
) -> None:
    for type_, reason in EVENTS_ON_TRUE.items():
        if type_ in written.became_true:
            rt.events(body, "Normal", reason, f"{type_.lower()}; {evicted} participant(s) removed")


async def sync_presenters(
    rt: Runtime, body: Mapping[str, Any], index: Index, logger: kopf.Logger
) -> None:
    """Converge room metadata presenters of a usable link; record Synced. LiveKit errors are
    recorded in the status, then re-raised for the caller to retry."""
    room = snapshot(body).room
    async with rt.locks(room):
        link = snapshot(body)  # the daemon's body is live: re-read after waiting for the lock
        now = rt.clock.now()
        if not link.usable(now):
            return
        with metrics.RECONCILE_SECONDS.labels(action="sync").time():
            try:
                participants = await rt.rooms.participants(room)
                peers = rules.peers_in_room(index, room)
                plan = rules.presenter_plan(link, participants, peers, now)
                await rt.rooms.change_metadata(room, plan.apply, create=False)
            except LiveKitError as exc:
                await _record_failure(rt, body, exc, ending=False)
                raise

            def change(fresh: StreamLink) -> rules.StatusChange | None:
                if not fresh.usable(now):
                    return None
                ok = rules.active_conditions(fresh, rules.LiveKitState.OK)
                return rules.status_change(fresh, ok, now, synced_presenters=plan.wanted)

            written = await write_status(rt, body, change)
    if written is not None and "syncedPresenters" in written.patch:
        logger.info("room presenters synced (%d from this link)", len(plan.wanted))


async def finish_link(
    rt: Runtime,
    body: Mapping[str, Any],
    index: Index,
    logger: kopf.Logger,
    *,
    record: bool = True,
) -> None:
    """The end-of-link plan: evict the link's participants, withdraw its presenters, record the
    terminal conditions and post LinkExpired/LinkRevoked when they flip."""
    room = snapshot(body).room
    async with rt.locks(room):
        link = snapshot(body)
        now = rt.clock.now()
        with metrics.RECONCILE_SECONDS.labels(action="finish").time():
            try:
                participants = await rt.rooms.participants(room)
                peers = rules.peers_in_room(index, room)
                plan = rules.end_plan(link, participants, peers, now)
                for identity in plan.evict:
                    await rt.rooms.remove_participant(room, identity)
                await rt.rooms.change_metadata(room, plan.apply, create=False)
            except LiveKitError as exc:
                if record:
                    await _record_failure(rt, body, exc, ending=True)
                else:
                    metrics.livekit_error(error_code(exc))
                raise
            metrics.EVICTIONS.inc(len(plan.evict))
            if plan.evict:
                logger.info("removed %d participant(s) of the ended link", len(plan.evict))
            if not record:
                return

            def change(fresh: StreamLink) -> rules.StatusChange | None:
                if not rules.ended(fresh, now):
                    return None
                done = rules.ended_conditions(fresh, now, rules.LiveKitState.OK)
                return rules.status_change(
                    fresh, done, now, synced_presenters=[], evicted=len(plan.evict)
                )

            written = await write_status(rt, body, change)
    if written is not None:
        _post_transitions(rt, body, written, evicted=len(plan.evict))


async def reconcile(
    rt: Runtime, body: Mapping[str, Any], index: Index, logger: kopf.Logger
) -> None:
    """What create/resume/spec-change handlers do: sync a usable link, finish an ended one."""
    link = snapshot(body)
    if link.deleting:
        return
    if link.usable(rt.clock.now()):
        await sync_presenters(rt, body, index, logger)
    elif not rules.cleanup_complete(link):
        await finish_link(rt, body, index, logger)


async def before_delete(
    rt: Runtime, body: Mapping[str, Any], index: Index, logger: kopf.Logger
) -> None:
    """Runs before the finalizer is released; a link already cleaned up needs no LiveKit."""
    if rules.cleanup_complete(snapshot(body)):
        return
    await finish_link(rt, body, index, logger, record=False)


async def run_active(
    rt: Runtime,
    body: Mapping[str, Any],
    index: Index,
    stopped: kopf.DaemonStopped,
    logger: kopf.Logger,
) -> None:
    """Expiry daemon of one usable link: periodic presenter resync, end plan at the deadline."""
    last_sync = rt.clock.now()  # create/resume handlers have just synced
    backoff = BACKOFF_START
    while not stopped:
        link = snapshot(body)
        if not rules.in_active_phase(link):
            return
        now = rt.clock.now()
        if link.expired(now):
            try:
                await finish_link(rt, body, index, logger)
            except LiveKitError:
                return  # recorded as Expired=True, Synced=False: the ended-phase daemon retries
            except StoreUnavailable:
                await rt.sleep(rt.jitter(backoff), stopped)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            return
        wake = min(link.expiration_time, last_sync + timedelta(seconds=rt.settings.resync_interval))
        delay = rules.seconds_until(wake, now)
        if delay > 0:
            await rt.sleep(min(delay, MAX_SLEEP), stopped)
            continue
        try:
            await sync_presenters(rt, body, index, logger)
        except (*LiveKitError, StoreUnavailable) as exc:
            logger.warning("presenter resync failed: %s", exc)  # recorded; retried next interval
        last_sync = rt.clock.now()


async def run_ended(
    rt: Runtime,
    body: Mapping[str, Any],
    index: Index,
    stopped: kopf.DaemonStopped,
    logger: kopf.Logger,
) -> None:
    """Ended-phase daemon: finish an incomplete cleanup (retrying while LiveKit is down), sweep
    once after the token TTL (a token minted just before the end could still join), and delete
    the link once the retention period is over."""
    started = rt.clock.now()
    first_end = rules.ended_at(snapshot(body), started) or started
    sweep_pending = started < first_end + 2 * rules.SWEEP_DELAY
    done_generation: int | None = None
    backoff = BACKOFF_START
    while not stopped:
        link = snapshot(body)
        if not rules.in_ended_phase(link):
            return
        now = rt.clock.now()
        end = rules.ended_at(link, now) or now
        sweep_due = sweep_pending and now >= end + rules.SWEEP_DELAY
        incomplete = not rules.cleanup_complete(link) and done_generation != link.generation
        try:
            if sweep_due or incomplete:
                await finish_link(rt, body, index, logger)
                done_generation = link.generation
                sweep_pending = sweep_pending and not sweep_due
            if rules.retention_due(link, now, rt.settings.retention):
                await rt.links.delete(link.name, uid=link.uid)
                metrics.RETENTION_DELETES.inc()
                logger.info("deleted: ended longer than the retention period ago")
                return
        except (*LiveKitError, StoreUnavailable) as exc:
            logger.warning("ended-link cleanup failed, retrying: %s", exc)
            await rt.sleep(rt.jitter(backoff), stopped)
            backoff = min(backoff * 2, BACKOFF_MAX)
            continue
        backoff = BACKOFF_START
        wakes = [end + timedelta(seconds=rt.settings.retention)]
        if sweep_pending:
            wakes.append(end + rules.SWEEP_DELAY)
        delay = rules.seconds_until(min(wakes), now)
        await rt.sleep(min(max(delay, MIN_SLEEP), ENDED_MAX_SLEEP), stopped)
