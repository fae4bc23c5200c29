"""Configuration from the environment. Every field is documented in the README with its default.

Reference names where the reference has the concept (CAST2_URL, SCENE_ROOM_PREFIX, …), CAST_* for
ours, LIVEKIT_* as LiveKit's tools use them. Durations are seconds.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cast_core.keys import SigningKeys


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # Kubernetes
    namespace: str = Field("default", validation_alias="CAST_NAMESPACE", max_length=63)
    store: Literal["kubernetes", "memory"] = Field("kubernetes", validation_alias="CAST_STORE")

    # Links
    link_ttl: int = Field(345_600, validation_alias="CAST_LINK_TTL", ge=60, le=90 * 86_400)
    link_signing_key: SecretStr = Field(SecretStr(""), validation_alias="CAST_LINK_SIGNING_KEY")
    cast2_url: str = Field("https://cast2.decentraland.org", validation_alias="CAST2_URL")
    scene_room_prefix: str = Field("", validation_alias="SCENE_ROOM_PREFIX", max_length=64)
    world_room_prefix: str = Field("", validation_alias="WORLD_ROOM_PREFIX", max_length=64)

    # HTTP
    http_base_url: str = Field("", validation_alias="CAST_HTTP_BASE_URL")
    cors_origins: str = Field("*", validation_alias="CAST_CORS_ORIGINS")
    max_body_bytes: int = Field(16_384, validation_alias="CAST_MAX_BODY_BYTES", ge=1024)
    log_level: str = Field("INFO", validation_alias="CAST_LOG_LEVEL")

    # Places and admins
    places_backend: Literal["auto", "static", "decentraland"] = Field(
        "auto", validation_alias="CAST_PLACES_BACKEND"
    )
    places_file: str = Field("", validation_alias="CAST_PLACES_FILE")
    place_admins_file: str = Field("", validation_alias="CAST_PLACE_ADMINS_FILE")
    places_api_url: str = Field(
        "https://places.decentraland.org/api", validation_alias="PLACES_API_URL"
    )
    lambdas_url: str = Field(
        "https://peer.decentraland.zone/lambdas", validation_alias="LAMBDAS_URL"
    )
    world_content_url: str = Field(
        "https://worlds-content-server.decentraland.org", validation_alias="WORLD_CONTENT_URL"
    )
    land_lease_url: str = Field(
        "https://decentraland.github.io/linker-server-authorizations/authorizations.json",
        validation_alias="CAST_LAND_LEASE_URL",
    )
    catalyst_url: str = Field("https://peer.decentraland.org", validation_alias="CATALYST_URL")
    upstream_timeout: float = Field(5.0, validation_alias="CAST_UPSTREAM_TIMEOUT", gt=0, le=60)

    # LiveKit
    livekit_url: str = Field("ws://127.0.0.1:7880", validation_alias="LIVEKIT_URL")
    livekit_api_key: str = Field("", validation_alias="LIVEKIT_API_KEY")
    livekit_api_secret: SecretStr = Field(SecretStr(""), validation_alias="LIVEKIT_API_SECRET")

    # Operator
    retention: int = Field(604_800, validation_alias="CAST_RETENTION", ge=0)
    resync_interval: float = Field(30.0, validation_alias="CAST_RESYNC_INTERVAL", gt=0)
    operator_metrics_port: int = Field(
        9090, validation_alias=AliasChoices("CAST_OPERATOR_METRICS_PORT"), ge=0, le=65535
    )

    def signing_keys(self) -> SigningKeys:
        return SigningKeys.from_setting(self.link_signing_key.get_secret_value())

    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def directory_backend(self) -> Literal["static", "decentraland"]:
        if self.places_backend != "auto":
            return self.places_backend
        return "static" if self.places_file else "decentraland"
