"""Application factory and the `cast-api` entry point."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match

from cast_api.errors import ApiError, BodyInvalid, error_response, ok_false_response
from cast_api.metrics import ApiMetrics
from cast_api.middleware import MetricsMiddleware, RequestGuardMiddleware
from cast_api.routes import cast, health
from cast_api.service import CastService
from cast_api.state import AppState
from cast_core.clock import Clock, SystemClock
from cast_core.grants import Credentials
from cast_core.livekit_rooms import LiveKitRoomAdmin, RoomAdmin
from cast_core.places import PlaceDirectory
from cast_core.settings import Settings
from cast_core.signed_fetch import CatalystValidator, HttpxCatalystValidator, SignedFetchError
from cast_core.store import StreamLinkStore

log = logging.getLogger("cast_api")


def build_directory(settings: Settings) -> PlaceDirectory:
    if settings.directory_backend() == "static":
        from cast_core.places_static import StaticPlaceDirectory

        return StaticPlaceDirectory.from_file(settings.places_file)
    from cast_core.places_decentraland import DecentralandPlaceDirectory
    from cast_core.places_static import load_place_admins

    extra = load_place_admins(settings.place_admins_file) if settings.place_admins_file else None
    return DecentralandPlaceDirectory.from_settings(settings, extra_admins=extra)


def build_store(settings: Settings, clock: Clock) -> StreamLinkStore:
    if settings.store == "memory":
        from cast_core.store_memory import MemoryStreamLinkStore

        return MemoryStreamLinkStore(settings.namespace, clock)
    from cast_core.store_kube import KubeStreamLinkStore, load_api_client

    return KubeStreamLinkStore(settings.namespace, load_api_client())


def create_app(
    settings: Settings | None = None,
    *,
    store: StreamLinkStore | None = None,
    rooms: RoomAdmin | None = None,
    directory: PlaceDirectory | None = None,
    clock: Clock | None = None,
    catalyst: CatalystValidator | None = None,
) -> FastAPI:
    """Build the app. Collaborators default to the real ones the settings describe."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    metrics = ApiMetrics()
    service = CastService(
        settings=settings,
        store=store or build_store(settings, clock),
        rooms=rooms
        or LiveKitRoomAdmin(
            settings.livekit_url,
            settings.livekit_api_key,
            settings.livekit_api_secret.get_secret_value(),
        ),
        directory=directory or build_directory(settings),
        keys=settings.signing_keys(),
        credentials=Credentials(
            settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
        ),
        clock=clock,
        metrics=metrics,
    )
    state = AppState(
        settings=settings,
        service=service,
        clock=clock,
        metrics=metrics,
        catalyst=catalyst
        or HttpxCatalystValidator(settings.catalyst_url, timeout=settings.upstream_timeout),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.store.start()
        try:
            yield
        finally:
            await service.store.stop()
            await service.rooms.aclose()
            await service.directory.aclose()
            if isinstance(state.catalyst, HttpxCatalystValidator):
                await state.catalyst.aclose()

    app = FastAPI(
        title="cast-gatekeeper",
        version="0.1.0",
        description="Decentraland Cast 2.0 gatekeeper backed by StreamLink resources.",
        lifespan=lifespan,
    )
    app.state.cast = state
    app.include_router(cast.router)
    app.include_router(health.router)
    _install_error_handlers(app)
    # Inside CORS, so a 413 or 500 still carries the CORS headers.
    app.add_middleware(RequestGuardMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origin_list(),
        allow_methods=["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        max_age=36000,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _document_security(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message)

    async def body_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BodyInvalid)
        return ok_false_response(400, exc.message, exc.data)

    async def signed_fetch(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SignedFetchError)
        return ok_false_response(exc.status, exc.message)

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        return ok_false_response(400, "Invalid request")

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        response = error_response(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first matching route's methods; list every route's.
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(BodyInvalid, body_invalid)
    app.add_exception_handler(SignedFetchError, signed_fetch)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _document_security(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {})["securitySchemes"] = {
            "x-identity": {
                "type": "apiKey",
                "in": "header",
                "name": "x-identity-auth-chain-0",
                "description": "Signed Fetch (ADR-44) from decentraland-kernel-scene: headers "
                "x-identity-auth-chain-0..N, x-identity-timestamp, x-identity-metadata.",
            }
        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Flags override the environment (the chart's api.extraArgs end up here)."""
    parser = argparse.ArgumentParser(prog="cast-api", description="cast-gatekeeper HTTP API")
    parser.add_argument("--host", default=os.environ.get("CAST_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("CAST_API_PORT", "8080")))
    parser.add_argument("--log-level", default=None, help="overrides CAST_LOG_LEVEL")
    parser.add_argument(
        "--root-path", default="", help="ASGI root path when served under a path prefix"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    args = parse_args(argv)
    settings = Settings()
    level = (args.log_level or settings.log_level).upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request URL at INFO; upstream URLs carry caller addresses.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        root_path=args.root_path,
        log_level=level.lower(),
        # Access logs would record /cast/stream-info/<key> paths: keys never reach logs.
        access_log=False,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
