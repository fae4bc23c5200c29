"""Prometheus metrics of the operator, served from the operator's own event loop.

Link counts are computed at scrape time from kopf's in-memory index, so they are exact and need
no bookkeeping in handlers; serving from the loop (aiohttp, not prometheus-client's thread)
means the index is never read while the loop mutates it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import datetime

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from cast_core.model import StreamLink

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILE_SECONDS = Histogram(
    "cast_operator_reconcile_seconds",
    "Time spent reconciling one StreamLink with LiveKit.",
    ["action"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
LIVEKIT_ERRORS = Counter(
    "cast_operator_livekit_errors",
    "LiveKit RoomService failures seen by the operator, by error code.",
    ["code"],
    registry=REGISTRY,
)
EVICTIONS = Counter(
    "cast_operator_evicted_participants",
    "Participants removed from LiveKit rooms because their link ended.",
    registry=REGISTRY,
)
RETENTION_DELETES = Counter(
    "cast_operator_retention_deletes",
    "Ended StreamLinks deleted after the retention period.",
    registry=REGISTRY,
)

LinkSource = Callable[[], Iterable[StreamLink]]


def link_state(link: StreamLink, now: datetime) -> str:
    if link.revoked:
        return "revoked"
    if link.expired(now):
        return "expired"
    return "active"


class LinkCensus(Collector):
    """cast_operator_links{state=active|expired|revoked}, counted at scrape time."""

    def __init__(self, source: LinkSource, now: Callable[[], datetime]) -> None:
        self._source = source
        self._now = now

    def collect(self) -> Iterator[Metric]:
        counts = {"active": 0, "expired": 0, "revoked": 0}
        now = self._now()
        for link in self._source():
            counts[link_state(link, now)] += 1
        family = GaugeMetricFamily(
            "cast_operator_links", "StreamLinks known to the operator, by state.", labels=["state"]
        )
        for state, count in counts.items():
            family.add_metric([state], count)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("cast_operator_links", "StreamLinks by state.", labels=["state"])


_census: LinkCensus | None = None


def watch_links(index: Mapping[str, Collection[StreamLink]], now: Callable[[], datetime]) -> None:
    """Count links from the kopf index (room -> links); idempotent across operator restarts."""
    global _census
    if _census is not None:
        REGISTRY.unregister(_census)

    def source() -> Iterator[StreamLink]:
        for links in index.values():
            yield from links

    _census = LinkCensus(source, now)
    REGISTRY.register(_census)


def livekit_error(code: str) -> None:
    LIVEKIT_ERRORS.labels(code=code).inc()


def exposition() -> bytes:
    return generate_latest(REGISTRY)


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def start_server(port: int, host: str = "0.0.0.0") -> web.AppRunner | None:  # noqa: S104
    """Serve /metrics on `port` (0 disables). The caller stops the returned runner."""
    if port == 0:
        return None
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
