"""The few StreamLink writes the operator makes outside kopf's own patching.

Daemons run for days and kopf applies a daemon's `patch` only when it exits, so status updates
from the expiry/resync loop and retention deletes go through this small client. The
`kubernetes` client is synchronous, so calls run in the default executor.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from cast_core.model import GROUP, PLURAL, VERSION
from cast_core.store_kube import API_ERRORS, map_api_error, merge_patch, read_body

REQUEST_TIMEOUT = (5.0, 15.0)  # connect, read


class LinkApi(Protocol):
    async def get(self, name: str) -> dict[str, Any] | None: ...

    async def patch_status(
        self, name: str, status: dict[str, Any], *, resource_version: str
    ) -> dict[str, Any]:
        """Merge-patch .status; Conflict when the object moved past `resource_version`."""
        ...

    async def delete(self, name: str, *, uid: str) -> None:
        """Delete this very object (uid precondition); one already gone counts as done."""
        ...


class KubeLinkApi:
    def __init__(self, namespace: str, api_client: client.ApiClient) -> None:
        self.namespace = namespace
        self._api = client.CustomObjectsApi(api_client)

    async def get(self, name: str) -> dict[str, Any] | None:
        return await read_body(self._api, self.namespace, name, REQUEST_TIMEOUT)

    async def patch_status(
        self, name: str, status: dict[str, Any], *, resource_version: str
    ) -> dict[str, Any]:
        patch = {"metadata": {"resourceVersion": resource_version}, "status": status}
        return await merge_patch(
            self._api.patch_namespaced_custom_object_status,
            self.namespace,
            name,
            patch,
            REQUEST_TIMEOUT,
        )

    async def delete(self, name: str, *, uid: str) -> None:
        try:
            await asyncio.to_thread(
                self._api.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status in (404, 409):  # gone already, or a newer object under the same name
                return
            raise map_api_error(exc, name) from None
        except API_ERRORS as exc:
            raise map_api_error(exc, name) from None
