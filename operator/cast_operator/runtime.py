"""What the handlers share, kept in kopf's memo: adapters, clock, sleeper, event poster, locks.

Tests build a Runtime from fakes (FakeRoomAdmin, FakeClock, a fake LinkApi, a sleep that moves the
fake clock), so no handler ever sleeps for real or needs a cluster.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from cast_core.clock import Clock, SystemClock
from cast_core.livekit_rooms import RoomAdmin, RoomLocks
from cast_core.settings import Settings
from cast_operator.kube import LinkApi

MEMO_KEY = "runtime"

Sleep = Callable[[float, kopf.DaemonStopped], Awaitable[None]]
EventPoster = Callable[[Mapping[str, Any], str, str, str], None]  # body, type, reason, message


async def stopped_sleep(seconds: float, stopped: kopf.DaemonStopped) -> None:
    """Sleep, but wake at once when kopf stops the daemon (deletion, filter change, shutdown)."""
    await stopped.wait(seconds)


def kopf_event(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    # kopf.event ignores settings.posting.level, so lifecycle Events are posted even at WARNING.
    kopf.event(body, type=type_, reason=reason, message=message)  # type: ignore[arg-type]


def jittered(delay: float) -> float:
    """Spread retries so many links failing together do not retry in lockstep."""
    return delay * (1.0 + random.random() / 2)  # noqa: S311 - jitter, not cryptography


@dataclass
class Runtime:
    settings: Settings
    rooms: RoomAdmin
    links: LinkApi
    clock: Clock = field(default_factory=SystemClock)
    sleep: Sleep = stopped_sleep
    events: EventPoster = kopf_event
    jitter: Callable[[float], float] = jittered
    # One lifecycle operation per room at a time: the resync loop, handlers and other links of
    # the same room all read participants and then rewrite the room's shared metadata.
    locks: RoomLocks = field(default_factory=RoomLocks)


def runtime(memo: Mapping[str, Any]) -> Runtime:
    found = memo.get(MEMO_KEY)
    if not isinstance(found, Runtime):
        raise RuntimeError("the operator runtime is missing from memo (startup did not run)")
    return found
