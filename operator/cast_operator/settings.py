"""Operator-wide setup: kopf settings, the shared runtime in memo, metrics, probes."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from cast_core.clock import SystemClock
from cast_core.livekit_rooms import LiveKitRoomAdmin
from cast_core.model import GROUP, format_time
from cast_core.settings import Settings
from cast_core.store_kube import load_api_client
from cast_operator import metrics
from cast_operator.handlers import rooms_index
from cast_operator.kube import KubeLinkApi
from cast_operator.runtime import MEMO_KEY, Runtime

FINALIZER = f"{GROUP}/finalizer"
METRICS_SERVER_KEY = "metrics_server"


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    settings.persistence.finalizer = FINALIZER
    # Own prefix: never collide with another kopf operator's annotations on shared objects.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Only warnings/errors of handlers become Events; lifecycle Events are posted explicitly.
    settings.posting.level = logging.WARNING
    # Watches: bounded server-side, reconnect when bookmarks stop (silent streams behind LBs).
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.inactivity_timeout = 70
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    # Namespaces are fixed by --namespace: no cluster-scoped namespace/CRD listing, no RBAC for it.
    settings.scanning.disabled = True


def build_runtime(config: Settings) -> Runtime:
    rooms = LiveKitRoomAdmin(
        config.livekit_url, config.livekit_api_key, config.livekit_api_secret.get_secret_value()
    )
    links = KubeLinkApi(config.namespace, load_api_client())
    return Runtime(settings=config, rooms=rooms, links=links, clock=SystemClock())


@kopf.on.startup(id="configure")
async def operator_startup(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    configure_kopf(settings)
    rt = build_runtime(Settings())
    memo[MEMO_KEY] = rt
    metrics.watch_links(rooms_index(kwargs), rt.clock.now)
    memo[METRICS_SERVER_KEY] = await metrics.start_server(rt.settings.operator_metrics_port)
    logger.info("operator configured for namespace %s", rt.settings.namespace)


@kopf.on.cleanup(id="close")
async def operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
    rt = memo.get(MEMO_KEY)
    if isinstance(rt, Runtime):
        await rt.rooms.aclose()
    server = memo.get(METRICS_SERVER_KEY)
    if server is not None:
        await server.cleanup()


# Probe results are served by kopf's liveness endpoint (they never reach a resource's status).
@kopf.on.probe(id="links")
async def probe_links(**kwargs: Any) -> int:
    return sum(len(links) for links in rooms_index(kwargs).values())


@kopf.on.probe(id="now")
async def probe_now(memo: kopf.Memo, **_: Any) -> str:
    rt = memo.get(MEMO_KEY)
    return format_time(rt.clock.now() if isinstance(rt, Runtime) else SystemClock().now())
