"""The reference's three error-body shapes (reference-behavior §2.2), kept for client compatibility.

1. handler errors:        {"error": message}
2. signed-fetch failures: {"ok": false, "message": message}
3. body validation:       {"ok": false, "message": "Invalid JSON body", "data": [ajv-like errors]}
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BodyInvalid(Exception):
    def __init__(self, message: str, data: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def ok_false_response(status: int, message: str, data: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "message": message}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=status)


NOT_ADMIN_GENERATE = "Only scene administrators can generate stream links"
NOT_ADMIN_PRESENTERS = "Only scene administrators can manage presenters"
NO_REALM = "Access denied, invalid signed-fetch request, no realm"
INVALID_TOKEN = "Invalid or expired streaming token"
EXPIRED_TOKEN = "Streaming token has expired"
WATCH_EXPIRED = "Stream access has expired. Please generate a new stream link."
LIVEKIT_UNAVAILABLE = "LiveKit is unavailable, try again later"
STORE_UNAVAILABLE = "Stream link storage is unavailable, try again later"
DIRECTORY_UNAVAILABLE = "Place directory is unavailable, try again later"
