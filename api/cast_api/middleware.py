"""Pure ASGI middlewares (cheaper than BaseHTTPMiddleware on the hot token routes)."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cast_api.metrics import ApiMetrics

log = logging.getLogger("cast_api")


class BodyTooLarge(Exception):
    pass


class RequestGuardMiddleware:
    """Answers before the app could: 413 for bodies over the limit (by Content-Length, or by
    counting a chunked body) and 500 {"error": "Internal Server Error"} for anything unhandled.

    Unhandled errors are not re-raised: Starlette's own error middleware would, and the server
    then logs the exception with its message, which could carry request data such as a key.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await _send_413(send, self.max_bytes)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_413(send, self.max_bytes)
        except Exception as exc:
            # Type and route template only: raw paths (stream-info) carry streaming keys.
            route = getattr(scope.get("route"), "path", "unmatched")
            log.error("unhandled %s on %s %s", type(exc).__name__, scope["method"], route)
            if not started:
                await send_json(send, 500, {"error": "Internal Server Error"})


async def send_json(send: Send, status: int, payload: dict[str, str]) -> None:
    """A whole JSON response from a middleware, before the app has started one."""
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_413(send: Send, limit: int) -> None:
    await send_json(send, 413, {"error": f"Request body is larger than {limit} bytes"})


class MetricsMiddleware:
    """Counts requests and latency per route template (bounded labels: never the raw path)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(template, scope["method"], status, time.perf_counter() - start)
