"""LiveKit token minting with the grants of reference-behavior §7 (TTL 300 s).

Tokens are the JWTs livekit-api's AccessToken produces (same claim names, HS256, `nbf` = issue
time), built directly: AccessToken serialises its claims through dataclasses.asdict, which cost
about 0.3 ms per token, most of a watcher-token request. Tests decode every role's token with
livekit-api's TokenVerifier, so the two can't drift apart unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

TOKEN_TTL_SECONDS = 300
LINK_ATTRIBUTE = "cast.link"


class Role(StrEnum):
    STREAMER = "streamer"
    WATCHER = "watcher"
    PRESENTATION_BOT = "presentation"


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: str

    def __repr__(self) -> str:
        return f"Credentials(api_key={self.api_key!r}, api_secret=<hidden>)"


def video_grant(role: Role, room: str) -> dict[str, Any]:
    """The `video` claim, camelCase as LiveKit reads it."""
    if role is Role.WATCHER:
        return {
            "roomJoin": True,
            "room": room,
            "roomList": False,
            "canPublish": False,
            "canSubscribe": True,
            "canPublishData": True,
            "canUpdateOwnMetadata": False,
            "canPublishSources": ["microphone"],
        }
    # Streamers and bots put their own identity in the reference's `cast` list, so their
    # sources stay unrestricted (no canPublishSources).
    return {
        "roomJoin": True,
        "room": room,
        "roomList": False,
        "canPublish": True,
        "canSubscribe": True,
        "canPublishData": True,
        "canUpdateOwnMetadata": role is Role.STREAMER,
    }


def participant_metadata(role: Role, display_name: str | None, room: str) -> dict[str, str]:
    if role is Role.STREAMER:
        return {"role": "streamer", "displayName": display_name or ""}
    if role is Role.WATCHER:
        return {"role": "watcher", "displayName": display_name or "", "roomId": room}
    return {"role": "presentation"}


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


_HEADER = _b64(b'{"alg":"HS256","typ":"JWT"}')


def encode_hs256(claims: dict[str, Any], secret: str) -> str:
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = _HEADER + b"." + body
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + _b64(signature)).decode()


def mint_token(
    credentials: Credentials,
    *,
    role: Role,
    identity: str,
    room: str,
    display_name: str | None = None,
    link_name: str | None = None,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "metadata": json.dumps(
            participant_metadata(role, display_name, room), separators=(",", ":")
        ),
        "video": video_grant(role, room),
        "sub": identity,
        "iss": credentials.api_key,
        "nbf": issued,
        "exp": issued + TOKEN_TTL_SECONDS,
    }
    if display_name and role is not Role.PRESENTATION_BOT:
        claims["name"] = display_name
    if link_name is not None:
        # Lets the operator evict exactly this link's publishers at expiry or revocation.
        claims["attributes"] = {LINK_ATTRIBUTE: link_name}
    return encode_hs256(claims, credentials.api_secret)
