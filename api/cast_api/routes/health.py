"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cast_api.state import AppState, app_state

router = APIRouter(tags=["Operations"])
State = Annotated[AppState, Depends(app_state)]


@router.get("/healthz", summary="Liveness")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: the StreamLink cache has synced")
async def readyz(state: State) -> JSONResponse:
    if state.service.store.ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "StreamLink cache not synced yet"}, status_code=503)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(state: State) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
