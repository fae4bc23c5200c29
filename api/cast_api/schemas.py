"""Request and response bodies, with the seed's field names (seed/cast-2.0-api.txt)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# The reference's ajv rule for every string field: non-blank start, at most 256 characters.
BodyString = Annotated[str, Field(pattern=r"^\S+.*$", max_length=256)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class StreamerTokenRequest(_Body):
    token: BodyString = Field(description="Streaming key for authentication")
    identity: BodyString = Field(description="Display name for the streamer")


class WatcherTokenRequest(_Body):
    location: BodyString = Field(
        description="Location (parcel coordinates or world name)", examples=["20,-4"]
    )
    identity: BodyString = Field(description="Display name for the watcher")
    parcel: BodyString | None = Field(
        None, description="Base parcel of the world scene, for world locations"
    )


class PresentationBotTokenRequest(_Body):
    streamingKey: BodyString = Field(
        description="Streaming key to generate presentation bot token for"
    )


class StreamerTokenResponse(BaseModel):
    url: str = Field(description="LiveKit connection URL")
    token: str = Field(description="LiveKit JWT token for authentication")
    roomId: str = Field(description="LiveKit room ID")
    identity: str = Field(description="Unique internal identity for the streamer")


class WatcherTokenResponse(BaseModel):
    url: str = Field(description="LiveKit connection URL")
    token: str = Field(description="LiveKit JWT token for authentication")
    roomId: str = Field(description="LiveKit room ID")
    identity: str = Field(description="Unique internal identity for the watcher")
    placeName: str | None = Field(None, description="Name of the place being watched")


class StreamLinkResponse(BaseModel):
    streamLink: str = Field(description="URL for streamers to access the stream")
    watcherLink: str = Field(description="URL for watchers to access the stream")
    streamingKey: str = Field(description="Unique streaming key for authentication")
    placeId: str = Field(description="ID of the place")
    placeName: str = Field(description="Name of the place")
    expiresAt: str = Field(description="Expiration timestamp in ISO format")
    expiresInDays: int = Field(description="Number of days until expiration")


class StreamInfoResponse(BaseModel):
    placeName: str = Field(description="Name of the place")
    placeId: str = Field(description="ID of the place")
    location: str = Field(description="Location identifier (world name or parcel coordinates)")
    isWorld: bool = Field(description="Whether this is a world or a parcel")


class PresentationBotTokenResponse(BaseModel):
    url: str = Field(description="LiveKit connection URL (superset of the seed)")
    token: str = Field(description="LiveKit JWT token for the presentation bot")
    roomId: str = Field(description="LiveKit room ID the bot can join")


class PresentersResponse(BaseModel):
    presenters: list[str] = Field(description="List of participant identities with presenter role")


class MessageResponse(BaseModel):
    message: str = Field(description="Success message")


class ErrorBody(BaseModel):
    error: str


class RejectionBody(BaseModel):
    ok: bool = False
    message: str
    data: list[dict[str, object]] | None = None
