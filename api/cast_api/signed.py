"""Signed-fetch (ADR-44) check for the admin routes, verified once per request."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from cast_api.metrics import rejection_reason
from cast_api.state import AppState
from cast_core.clock import epoch_ms
from cast_core.signed_fetch import SignedFetchError, SignedRequest, verify_signed_fetch

KERNEL_SCENE = "decentraland-kernel-scene"


def kernel_scene_only(metadata: dict[str, Any]) -> bool:
    return metadata.get("signer") == KERNEL_SCENE


def signed_path(request: Request, http_base_url: str) -> str:
    """The path the client signed: raw (percent-encoded), behind any CAST_HTTP_BASE_URL prefix."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1").split("?", 1)[0] if raw else request.url.path
    prefix = urlsplit(http_base_url).path.rstrip("/") if http_base_url else ""
    return prefix + path


async def verify_kernel_scene(request: Request, state: AppState) -> SignedRequest:
    try:
        return await verify_signed_fetch(
            method=request.method,
            path=signed_path(request, state.settings.http_base_url),
            headers=request.headers,
            now_ms=epoch_ms(state.clock.now()),
            metadata_validator=kernel_scene_only,
            catalyst=state.catalyst,
        )
    except SignedFetchError as exc:
        state.metrics.signed_fetch_rejections.labels(rejection_reason(exc.message)).inc()
        raise
