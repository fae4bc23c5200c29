"""The Kubernetes store's watch handling, event by event (no apiserver needed)."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from cast_core.store_kube import RELIST, KubeStreamLinkStore
from tests.contract.store_contract import draft


def body(rv: str, **spec: Any) -> dict[str, Any]:
    d = draft(place_id="place-w")
    b = d.to_body("cast")
    b["metadata"].update(resourceVersion=rv, uid="u-1", creationTimestamp="2026-01-01T00:00:00Z")
    b["spec"].update(spec)
    return b


def test_watch_events_drive_the_cache_and_junk_is_skipped() -> None:
    store = KubeStreamLinkStore("cast", client.ApiClient(client.Configuration()))
    assert store.apply_event(None) is None  # what the client yields around a closed stream
    assert store.apply_event("not an event") is None
    assert store.apply_event({"type": "ADDED", "object": None}) is None
    assert store.apply_event({"type": "ADDED", "object": body("5")}) == "5"
    assert [link.resource_version for link in store.by_place("place-w")] == ["5"]
    assert store.apply_event({"type": "MODIFIED", "object": body("6", revoked=True)}) == "6"
    assert store.by_place("place-w")[0].revoked
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}
    assert store.apply_event(bookmark) == "9"
    assert store.apply_event({"type": "ERROR", "object": {"code": 410}}) == RELIST
    assert store.apply_event({"type": "ERROR", "object": {"code": 500}}) is None
    assert store.apply_event({"type": "DELETED", "object": body("10")}) == "10"
    assert store.by_place("place-w") == []
