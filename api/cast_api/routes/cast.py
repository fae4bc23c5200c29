"""The eight Cast 2.0 routes (seed/cast-2.0-api.txt). Thin: parse, call the service, answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cast_api.body import parse_body
from cast_api.errors import ApiError
from cast_api.schemas import (
    ErrorBody,
    MessageResponse,
    PresentationBotTokenRequest,
    PresentationBotTokenResponse,
    PresentersResponse,
    RejectionBody,
    StreamerTokenRequest,
    StreamerTokenResponse,
    StreamInfoResponse,
    StreamLinkResponse,
    WatcherTokenRequest,
    WatcherTokenResponse,
)
from cast_api.signed import verify_kernel_scene
from cast_api.state import AppState
from cast_core.identities import INVALID_PRESENTER_MESSAGE, normalize_presenter

router = APIRouter(prefix="/cast", tags=["Cast 2.0"])


def _state(request: Request) -> AppState:
    # Read directly rather than through Depends: dependency resolution showed up in profiles.
    state: AppState = request.app.state.cast
    return state


_ERR = {"model": ErrorBody}
_REJECT = {"model": RejectionBody}
SIGNED_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed signed fetch or metadata", "model": RejectionBody | ErrorBody},
    401: {"description": "Invalid signature or no realm", "model": RejectionBody | ErrorBody},
    403: {"description": "Not an administrator of the scene", **_ERR},
    404: {"description": "No place or no active stream", **_ERR},
    503: {"description": "A backend is unavailable", "model": RejectionBody | ErrorBody},
}
SIGNED_SECURITY: dict[str, Any] = {"security": [{"x-identity": []}]}
IdentityParam = Annotated[
    str,
    Path(
        description=(
            "Ethereum address of the participant (0x + 40 hex characters) or a streamer identity"
        ),
    ),
]


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _body_responses(extra: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    return {
        400: {"description": "Body is not JSON or fails the schema", **_REJECT},
        413: {"description": "Body larger than the limit", **_ERR},
        503: {"description": "A backend is unavailable", **_ERR},
        **extra,
    }


@router.post(
    "/streamer-token",
    summary="Get streamer token",
    response_model=StreamerTokenResponse,
    openapi_extra=_body_doc(StreamerTokenRequest),
    responses=_body_responses({401: {"description": "Invalid or expired streaming key", **_ERR}}),
)
async def streamer_token(request: Request) -> JSONResponse:
    state = _state(request)
    body = parse_body(await request.body(), StreamerTokenRequest)
    return JSONResponse(await state.service.streamer_token(body.token, body.identity))


@router.post(
    "/watcher-token",
    summary="Get watcher token",
    response_model=WatcherTokenResponse,
    openapi_extra=_body_doc(WatcherTokenRequest),
    responses=_body_responses(
        {
            401: {"description": "The place's stream link has expired", **_ERR},
            404: {"description": "No such place or no active stream", **_ERR},
        }
    ),
)
async def watcher_token(request: Request) -> JSONResponse:
    state = _state(request)
    body = parse_body(await request.body(), WatcherTokenRequest)
    result = await state.service.watcher_token(body.location, body.identity, body.parcel)
    return JSONResponse(result)


@router.get(
    "/generate-stream-link",
    summary="Generate a stream link (scene admins, signed fetch)",
    response_model=StreamLinkResponse,
    responses=SIGNED_RESPONSES,
    openapi_extra=SIGNED_SECURITY,
)
async def generate_stream_link(request: Request) -> JSONResponse:
    state = _state(request)
    signed = await verify_kernel_scene(request, state)
    return JSONResponse(await state.service.generate(signed.signer, signed.metadata))


@router.get(
    "/stream-info/{streamingKey}",
    summary="Get stream information",
    response_model=StreamInfoResponse,
    responses={400: {"description": "Unknown, revoked or expired key", **_ERR}},
)
async def stream_info(
    request: Request,
    streamingKey: Annotated[str, Path(description="Streaming key for the stream")],
) -> JSONResponse:
    return JSONResponse(await _state(request).service.stream_info(streamingKey))


@router.post(
    "/presentation-bot-token",
    summary="Generate presentation bot token",
    response_model=PresentationBotTokenResponse,
    openapi_extra=_body_doc(PresentationBotTokenRequest),
    responses=_body_responses({401: {"description": "Invalid or expired streaming key", **_ERR}}),
)
async def presentation_bot_token(request: Request) -> JSONResponse:
    state = _state(request)
    body = parse_body(await request.body(), PresentationBotTokenRequest)
    return JSONResponse(await state.service.bot_token(body.streamingKey))


@router.get(
    "/presenters",
    summary="List presenters in a room",
    response_model=PresentersResponse,
    responses=SIGNED_RESPONSES,
    openapi_extra=SIGNED_SECURITY,
)
async def list_presenters(request: Request) -> JSONResponse:
    state = _state(request)
    signed = await verify_kernel_scene(request, state)
    return JSONResponse(
        {"presenters": await state.service.presenters(signed.signer, signed.metadata)}
    )


def _presenter(identity: str) -> str:
    normalized = normalize_presenter(identity)
    if normalized is None:
        raise ApiError(400, INVALID_PRESENTER_MESSAGE)
    return normalized


@router.put(
    "/presenters/{participantIdentity}",
    summary="Promote participant to presenter",
    response_model=MessageResponse,
    responses=SIGNED_RESPONSES,
    openapi_extra=SIGNED_SECURITY,
)
async def promote_presenter(
    request: Request,
    participantIdentity: IdentityParam,
) -> JSONResponse:
    state = _state(request)
    signed = await verify_kernel_scene(request, state)
    identity = _presenter(participantIdentity)
    await state.service.promote(signed.signer, signed.metadata, identity)
    return JSONResponse({"message": "Participant promoted to presenter"})


@router.delete(
    "/presenters/{participantIdentity}",
    summary="Demote presenter to watcher",
    response_model=MessageResponse,
    responses=SIGNED_RESPONSES,
    openapi_extra=SIGNED_SECURITY,
)
async def demote_presenter(
    request: Request,
    participantIdentity: IdentityParam,
) -> JSONResponse:
    state = _state(request)
    signed = await verify_kernel_scene(request, state)
    identity = _presenter(participantIdentity)
    await state.service.demote(signed.signer, signed.metadata, identity)
    return JSONResponse({"message": "Participant demoted from presenter"})
