"""LiveKit token minting with the grants of reference-behavior §7 (TTL 300 s)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from livekit import api

TOKEN_TTL = timedelta(seconds=300)
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


def video_grants(role: Role, room: str) -> api.VideoGrants:
    if role is Role.WATCHER:
        return api.VideoGrants(
            room_join=True,
            room=room,
            room_list=False,
            can_publish=False,
            can_subscribe=True,
            can_publish_data=True,
            can_update_own_metadata=False,
            can_publish_sources=["microphone"],
        )
    # Streamers and bots put their own identity in the `cast` list, so sources stay unrestricted.
    return api.VideoGrants(
        room_join=True,
        room=room,
        room_list=False,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        can_update_own_metadata=role is Role.STREAMER,
    )


def participant_metadata(role: Role, display_name: str | None, room: str) -> dict[str, str]:
    if role is Role.STREAMER:
        return {"role": "streamer", "displayName": display_name or ""}
    if role is Role.WATCHER:
        return {"role": "watcher", "displayName": display_name or "", "roomId": room}
    return {"role": "presentation"}


def mint_token(
    credentials: Credentials,
    *,
    role: Role,
    identity: str,
    room: str,
    display_name: str | None = None,
    link_name: str | None = None,
) -> str:
    token = (
        api.AccessToken(credentials.api_key, credentials.api_secret)
        .with_identity(identity)
        .with_ttl(TOKEN_TTL)
        .with_grants(video_grants(role, room))
        .with_metadata(
            json.dumps(participant_metadata(role, display_name, room), separators=(",", ":"))
        )
    )
    if display_name is not None and role is not Role.PRESENTATION_BOT:
        token = token.with_name(display_name)
    if link_name is not None:
        # Lets the operator evict exactly this link's publishers at expiry or revocation.
        token = token.with_attributes({LINK_ATTRIBUTE: link_name})
    jwt: str = token.to_jwt()
    return jwt
