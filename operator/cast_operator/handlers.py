"""kopf handlers for StreamLinks. Each is a thin edge over cast_operator.reconcile: it fetches the
runtime from memo, runs one step, and maps domain errors to kopf's retry semantics.

Status is written by reconcile (optimistic concurrency on resourceVersion), never returned:
handler return values would land in status.<handler id> and be pruned by the schema.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, cast

import kopf

from cast_core import lifecycle as rules
from cast_core.livekit_rooms import LiveKitRejected, LiveKitUnavailable
from cast_core.model import GROUP, PLURAL, VERSION, StreamLink
from cast_core.store import StoreError
from cast_operator import reconcile
from cast_operator.runtime import Runtime, runtime

INDEX = "links_by_room"
RETRY_DELAY = 10.0  # seconds before kopf retries a handler that hit a transient failure
CANCELLATION_TIMEOUT = 10.0  # longer than one LiveKit call (5 s timeout), so cleanup can finish


@contextmanager
def kopf_errors(rt: Runtime) -> Iterator[None]:
    """LiveKit or apiserver down: retry later; LiveKit refusing the request: do not retry."""
    try:
        yield
    except LiveKitUnavailable as exc:
        raise kopf.TemporaryError(str(exc), delay=rt.jitter(RETRY_DELAY)) from None
    except LiveKitRejected as exc:
        raise kopf.PermanentError(str(exc)) from None
    except StoreError as exc:
        raise kopf.TemporaryError(str(exc), delay=rt.jitter(RETRY_DELAY)) from None


def rooms_index(kwargs: Mapping[str, Any]) -> reconcile.Index:
    """The links_by_room index; kopf passes indices as extra kwargs its callback types omit."""
    return cast(reconcile.Index, kwargs[INDEX])


def in_active_phase(body: kopf.Body, **_: Any) -> bool:
    return rules.in_active_phase(reconcile.snapshot(body))


def in_ended_phase(body: kopf.Body, **_: Any) -> bool:
    return rules.in_ended_phase(reconcile.snapshot(body))


@kopf.index(GROUP, VERSION, PLURAL, id=INDEX)
async def links_by_room(body: kopf.Body, **_: Any) -> dict[str, StreamLink]:
    """Other links of a room, so ending one link never withdraws what another still wants."""
    link = reconcile.snapshot(body)
    return {link.room: replace(link, body={})}


@kopf.on.create(GROUP, VERSION, PLURAL, id="sync-on-create")
@kopf.on.resume(GROUP, VERSION, PLURAL, id="sync-on-resume")
@kopf.on.field(GROUP, VERSION, PLURAL, field="spec.presenters", id="sync-presenters")
# Revocation runs the same level-based step at once: reconcile finishes an ended link.
@kopf.on.field(GROUP, VERSION, PLURAL, field="spec.revoked", new=True, id="revoke")
async def streamlink_reconcile(
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    rt = runtime(memo)
    with kopf_errors(rt):
        await reconcile.reconcile(rt, body, rooms_index(kwargs), logger)


@kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup-on-delete")
async def streamlink_delete(
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    rt = runtime(memo)
    with kopf_errors(rt):
        await reconcile.before_delete(rt, body, rooms_index(kwargs), logger)


@kopf.daemon(
    GROUP,
    VERSION,
    PLURAL,
    id="expiry",
    when=in_active_phase,
    cancellation_timeout=CANCELLATION_TIMEOUT,
)
async def streamlink_expiry(
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    stopped: kopf.DaemonStopped,
    **kwargs: Any,
) -> None:
    await reconcile.run_active(runtime(memo), body, rooms_index(kwargs), stopped, logger)


@kopf.daemon(
    GROUP,
    VERSION,
    PLURAL,
    id="aftercare",
    when=in_ended_phase,
    initial_delay=5.0,  # let the revoke/expiry step that just ended the link land its status
    cancellation_timeout=CANCELLATION_TIMEOUT,
)
async def streamlink_aftercare(
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    stopped: kopf.DaemonStopped,
    **kwargs: Any,
) -> None:
    await reconcile.run_ended(runtime(memo), body, rooms_index(kwargs), stopped, logger)
