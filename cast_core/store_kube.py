"""StreamLinkStore on the Kubernetes API, with a watch-fed in-process cache.

The `kubernetes` client is synchronous, so the watch runs in a daemon thread and writes run in
the default executor. The cache keeps serving reads while the apiserver is unreachable; writes
then fail fast with StoreUnavailable (mapped to 503 by the API).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, cast

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from cast_core.model import GROUP, PLURAL, VERSION, StreamLink, StreamLinkDraft
from cast_core.store import AlreadyExists, Conflict, Invalid, NotFound, StoreUnavailable

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = (3.0, 10.0)  # connect, read: fail fast so callers get a 503, not a hang
WATCH_SECONDS = 55
RELIST = "relist"


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster config when running in a pod, else KUBECONFIG / the given file."""
    configuration = client.Configuration()
    try:
        if kubeconfig:
            raise config.ConfigException("explicit kubeconfig")
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        # KUBECONFIG read now: the client's own default path is captured at import time.
        config.load_kube_config(
            config_file=kubeconfig or os.environ.get("KUBECONFIG"),
            client_configuration=configuration,
        )
    configuration.retries = 1
    return client.ApiClient(configuration)


API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


def map_api_error(exc: Exception, name: str, *, creating: bool = False) -> Exception:
    """The store error for a failed apiserver call (never with the request body in it)."""
    if isinstance(exc, ApiException):
        if exc.status == 409:
            return AlreadyExists(name) if creating else Conflict(name)
        if exc.status == 404:
            return NotFound(name)
        if exc.status in (400, 422):
            return Invalid(f"StreamLink {name} rejected by the apiserver ({exc.status})")
        return StoreUnavailable(f"apiserver answered {exc.status}")
    return StoreUnavailable(f"apiserver unreachable ({type(exc).__name__})")


async def read_body(
    api: client.CustomObjectsApi,
    namespace: str,
    name: str,
    request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
) -> dict[str, Any] | None:
    """One GET of a StreamLink from the apiserver; None when it does not exist."""
    try:
        body = await asyncio.to_thread(
            api.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            _request_timeout=request_timeout,
        )
    except API_ERRORS as exc:
        if isinstance(exc, ApiException) and exc.status == 404:
            return None
        raise map_api_error(exc, name) from None
    return cast(dict[str, Any], body)


async def merge_patch(
    call: Callable[..., Any],
    namespace: str,
    name: str,
    patch: dict[str, Any],
    request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
) -> dict[str, Any]:
    """A JSON merge patch of a StreamLink (`call` picks the object or its status subresource);
    a resourceVersion in the patch makes the apiserver refuse a stale write with 409."""
    try:
        body = await asyncio.to_thread(
            call,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
            _request_timeout=request_timeout,
            _content_type="application/merge-patch+json",
        )
    except API_ERRORS as exc:
        raise map_api_error(exc, name) from None
    return cast(dict[str, Any], body)


class KubeStreamLinkStore:
    def __init__(self, namespace: str, api_client: client.ApiClient) -> None:
        self.namespace = namespace
        self._api = client.CustomObjectsApi(api_client)
        self._lock = threading.Lock()
        self._links: dict[str, StreamLink] = {}
        self._by_place: dict[str, set[str]] = defaultdict(set)
        self._by_room: dict[str, set[str]] = defaultdict(set)
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: watch.Watch | None = None

    # ---- cache -------------------------------------------------------------------------------
    def _put(self, body: dict[str, Any]) -> StreamLink:
        link = StreamLink.from_body(body)
        with self._lock:
            old = self._links.get(link.name)
            if old is not None:
                self._by_place[old.place.id].discard(old.name)
                self._by_room[old.room].discard(old.name)
            self._links[link.name] = link
            self._by_place[link.place.id].add(link.name)
            self._by_room[link.room].add(link.name)
        return link

    def _drop(self, name: str) -> None:
        with self._lock:
            old = self._links.pop(name, None)
            if old is not None:
                self._by_place[old.place.id].discard(name)
                self._by_room[old.room].discard(name)

    def _replace_all(self, bodies: list[dict[str, Any]]) -> None:
        with self._lock:
            self._links.clear()
            self._by_place.clear()
            self._by_room.clear()
        for body in bodies:
            self._put(body)

    def by_place(self, place_id: str) -> list[StreamLink]:
        with self._lock:
            return [self._links[n] for n in self._by_place.get(place_id, ())]

    def by_room(self, room: str) -> list[StreamLink]:
        with self._lock:
            return [self._links[n] for n in self._by_room.get(room, ())]

    def ready(self) -> bool:
        return self._synced.is_set()

    # ---- watch -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run_watch, name="streamlink-watch", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        self._stopping.set()
        if self._watch is not None:
            self._watch.stop()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)

    def apply_event(self, event: Any) -> str | None:
        """Apply one watch event to the cache. Returns the new resourceVersion, RELIST when the
        watch must start over, or None for anything to skip (the client yields None or raw
        lines around a closed stream)."""
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            return None
        kind, obj = event.get("type"), event["object"]
        if kind == "ERROR":
            return RELIST if obj.get("code") == 410 else None
        version = obj.get("metadata", {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            self._put(obj)
        elif kind == "DELETED":
            self._drop(obj["metadata"]["name"])
        return str(version) if version else None

    def _list(self) -> str:
        listing = cast(
            dict[str, Any],
            self._api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, _request_timeout=REQUEST_TIMEOUT
            ),
        )
        self._replace_all(listing.get("items", []))
        self._synced.set()
        return str(listing["metadata"]["resourceVersion"])

    def _run_watch(self) -> None:
        backoff = 0.5
        resource_version: str | None = None
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list()
                    log.info("streamlink cache synced (%d links)", len(self._links))
                self._watch = watch.Watch()
                for event in self._watch.stream(
                    self._api.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    _request_timeout=(REQUEST_TIMEOUT[0], WATCH_SECONDS + 5),
                ):
                    outcome = self.apply_event(event)
                    if outcome == RELIST:
                        resource_version = None
                        break
                    if outcome is not None:
                        resource_version = outcome
                    if self._stopping.is_set():
                        break
                backoff = 0.5
            except ApiException as exc:
                if exc.status == 410:
                    resource_version = None
                    continue
                log.warning("streamlink watch failed (%s); retrying in %.1fs", exc.status, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                log.warning(
                    "streamlink watch lost the apiserver (%s); retrying in %.1fs",
                    type(exc).__name__,
                    backoff,
                )
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception as exc:
                # Anything unexpected: start over from a fresh list rather than let the thread
                # die and leave the cache frozen.
                log.error("streamlink watch broke (%s); relisting", type(exc).__name__)
                resource_version = None
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    # ---- reads and writes ------------------------------------------------------------------
    async def get(self, name: str, *, fresh: bool = False) -> StreamLink | None:
        if not fresh:
            with self._lock:
                cached = self._links.get(name)
            if cached is not None:
                return cached
        body = await read_body(self._api, self.namespace, name)
        if body is None:
            return None
        return self._put(body)

    async def create(self, draft: StreamLinkDraft) -> StreamLink:
        try:
            body = await asyncio.to_thread(
                self._api.create_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                draft.to_body(self.namespace),
                _request_timeout=REQUEST_TIMEOUT,
            )
        except API_ERRORS as exc:
            raise map_api_error(exc, draft.name, creating=True) from None
        return self._put(cast(dict[str, Any], body))

    async def patch_spec(
        self, name: str, spec_patch: dict[str, Any], *, resource_version: str | None = None
    ) -> StreamLink:
        patch: dict[str, Any] = {"spec": spec_patch}
        if resource_version is not None:
            patch["metadata"] = {"resourceVersion": resource_version}
        body = await merge_patch(
            self._api.patch_namespaced_custom_object, self.namespace, name, patch
        )
        return self._put(body)
