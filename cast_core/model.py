"""The StreamLink resource (cast.decentraland.org/v1alpha1) as an immutable Python value."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cast_core.keys import LINK_NAME_PREFIX
from cast_core.rooms import room_label

GROUP = "cast.decentraland.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "StreamLink"
PLURAL = "streamlinks"

LABEL_PLACE = f"{GROUP}/place-id"
LABEL_ROOM = f"{GROUP}/room"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"

MAX_PRESENTERS = 64

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


def place_label(place_id: str) -> str:
    """The place id itself when it is label-safe (so kubectl -l reads naturally), else a hash."""
    if _LABEL_VALUE.fullmatch(place_id):
        return place_id
    return "h-" + hashlib.sha256(place_id.encode()).hexdigest()[:40]


def place_hash(place_id: str) -> str:
    return hashlib.sha256(place_id.encode()).hexdigest()[:12]


def link_name(place_id: str, sequence: int) -> str:
    """Links of one place are numbered; the apiserver's name uniqueness serialises generates."""
    return f"{LINK_NAME_PREFIX}{place_hash(place_id)}-{sequence}"


def link_sequence(name: str) -> int:
    _, _, seq = name.rpartition("-")
    return int(seq) if seq.isdigit() else 0


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class PlaceRef:
    id: str
    name: str
    location: str
    world: bool


@dataclass(frozen=True)
class StreamLinkDraft:
    """What the API asks the store to create."""

    name: str
    place: PlaceRef
    scene_id: str
    realm: str
    room: str
    generated_by: str
    expiration_time: datetime

    def to_body(self, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": self.name,
                "namespace": namespace,
                "labels": {
                    LABEL_PLACE: place_label(self.place.id),
                    LABEL_ROOM: room_label(self.room),
                    LABEL_MANAGED_BY: "cast-gatekeeper",
                },
            },
            "spec": {
                "place": {
                    "id": self.place.id,
                    "name": self.place.name,
                    "location": self.place.location,
                    "world": self.place.world,
                },
                "scene": {"id": self.scene_id, "realm": self.realm},
                "room": self.room,
                "generatedBy": self.generated_by,
                "expirationTime": format_time(self.expiration_time),
                "presenters": [],
                "revoked": False,
            },
        }


@dataclass(frozen=True)
class StreamLink:
    name: str
    namespace: str
    uid: str
    resource_version: str
    generation: int
    creation_time: datetime
    place: PlaceRef
    scene_id: str
    realm: str
    room: str
    generated_by: str
    expiration_time: datetime
    presenters: tuple[str, ...] = ()
    revoked: bool = False
    revocation_reason: str | None = None
    deleting: bool = False
    conditions: tuple[dict[str, Any], ...] = ()
    synced_presenters: tuple[str, ...] = ()
    body: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def sequence(self) -> int:
        return link_sequence(self.name)

    def usable(self, now: datetime) -> bool:
        """The expiry rule everywhere: not revoked, not being deleted, and now < expirationTime."""
        return not self.revoked and not self.deleting and now < self.expiration_time

    def expired(self, now: datetime) -> bool:
        return now >= self.expiration_time

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> StreamLink:
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        place = spec.get("place") or {}
        scene = spec.get("scene") or {}
        created = meta.get("creationTimestamp")
        return cls(
            name=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            uid=str(meta.get("uid", "")),
            resource_version=str(meta.get("resourceVersion", "")),
            generation=int(meta.get("generation") or 0),
            creation_time=parse_time(created) if created else datetime.fromtimestamp(0, UTC),
            place=PlaceRef(
                id=str(place.get("id", "")),
                name=str(place.get("name", "")),
                location=str(place.get("location", "")),
                world=bool(place.get("world", False)),
            ),
            scene_id=str(scene.get("id", "")),
            realm=str(scene.get("realm", "")),
            room=str(spec.get("room", "")),
            generated_by=str(spec.get("generatedBy", "")),
            expiration_time=parse_time(str(spec.get("expirationTime", "1970-01-01T00:00:00Z"))),
            presenters=tuple(str(p) for p in spec.get("presenters") or ()),
            revoked=bool(spec.get("revoked", False)),
            revocation_reason=spec.get("revocationReason"),
            deleting=bool(meta.get("deletionTimestamp")),
            conditions=tuple(status.get("conditions") or ()),
            synced_presenters=tuple(str(p) for p in status.get("syncedPresenters") or ()),
            body=body,
        )


def latest(links: list[StreamLink]) -> StreamLink | None:
    return max(links, key=lambda link: (link.sequence, link.creation_time), default=None)
