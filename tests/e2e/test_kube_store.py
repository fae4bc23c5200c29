"""The StreamLinkStore contract against the real apiserver, with the API's own ServiceAccount
(so the chart's RBAC and the CRD's schema and CEL rules are what the store meets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cast_core.store_kube import KubeStreamLinkStore, load_api_client
from tests.contract.store_contract import StoreContract, draft
from tests.e2e.stack import Stack


class TestKubeStore(StoreContract):
    @pytest.fixture
    async def store(self, stack: Stack) -> AsyncIterator[KubeStreamLinkStore]:
        kube = KubeStreamLinkStore(
            stack.namespace, load_api_client(str(stack.kubeconfig_for("cast-api")))
        )
        await kube.start()
        for _ in range(100):
            if kube.ready():
                break
            await asyncio.sleep(0.1)
        assert kube.ready(), "the watch cache never synced"
        yield kube
        await kube.stop()


async def test_watch_sees_changes_made_elsewhere(stack: Stack) -> None:
    """A change made by someone else (kubectl) reaches the cache without a read."""
    kube = KubeStreamLinkStore(
        stack.namespace, load_api_client(str(stack.kubeconfig_for("cast-api")))
    )
    other = KubeStreamLinkStore(stack.namespace, load_api_client(str(stack.admin_kubeconfig)))
    await kube.start()
    try:
        d = draft()
        await other.create(d)
        for _ in range(100):
            if kube.by_place(d.place.id):
                break
            await asyncio.sleep(0.1)
        assert [link.name for link in kube.by_place(d.place.id)] == [d.name]
        stack.kubectl(
            "patch", "sl", d.name, "-n", stack.namespace, "--type", "merge",
            "-p", '{"spec":{"revoked":true}}',
        )  # fmt: skip
        for _ in range(100):
            if kube.by_place(d.place.id)[0].revoked:
                break
            await asyncio.sleep(0.1)
        assert kube.by_place(d.place.id)[0].revoked
        stack.kubectl("delete", "sl", d.name, "-n", stack.namespace, "--wait=false")
    finally:
        await kube.stop()


async def test_unreachable_apiserver_is_store_unavailable() -> None:
    from kubernetes import client

    from cast_core.store import StoreUnavailable

    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:1"
    configuration.verify_ssl = False
    configuration.retries = 0
    kube = KubeStreamLinkStore("cast", client.ApiClient(configuration))
    with pytest.raises(StoreUnavailable):
        await kube.create(draft())
    with pytest.raises(StoreUnavailable):
        await kube.get("sl-000000000000-1")
