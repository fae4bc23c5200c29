"""What the Cast routes do, between HTTP and the shared domain.

Errors are raised as ApiError with the reference's statuses and messages; the routes stay thin.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from cast_api import errors as e
from cast_api.errors import ApiError
from cast_api.metrics import ApiMetrics
from cast_core import identities, room_metadata
from cast_core.clock import Clock
from cast_core.grants import Credentials, Role, mint_token
from cast_core.keys import SigningKeys, link_name_from_key
from cast_core.livekit_rooms import LiveKitRejected, LiveKitUnavailable, RoomAdmin, ws_url
from cast_core.model import MAX_PRESENTERS, PlaceRef, StreamLink, StreamLinkDraft, latest, link_name
from cast_core.places import (
    DirectoryUnavailable,
    InvalidPlace,
    Place,
    PlaceDirectory,
    is_parcel,
    is_world_name,
)
from cast_core.rooms import is_world_hostname, room_for
from cast_core.settings import Settings
from cast_core.store import (
    AlreadyExists,
    Invalid,
    NotFound,
    StoreError,
    StoreUnavailable,
    StreamLinkStore,
    update_spec,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_GENERATE_ATTEMPTS = 5


@dataclass(frozen=True)
class SceneContext:
    """What a signed request says about the calling scene."""

    signer: str
    scene_id: str
    realm_name: str
    is_world: bool
    parcel: str | None
    room: str


async def guarded(call: Awaitable[T]) -> T:
    """Map backend failures to 503 (never 500) with messages that carry no secrets."""
    try:
        return await call
    except StoreUnavailable:
        raise ApiError(503, e.STORE_UNAVAILABLE) from None
    except (LiveKitUnavailable, LiveKitRejected):
        raise ApiError(503, e.LIVEKIT_UNAVAILABLE) from None
    except DirectoryUnavailable:
        raise ApiError(503, e.DIRECTORY_UNAVAILABLE) from None
    except InvalidPlace as exc:
        raise ApiError(400, str(exc)) from None


@dataclass
class CastService:
    settings: Settings
    store: StreamLinkStore
    rooms: RoomAdmin
    directory: PlaceDirectory
    keys: SigningKeys
    credentials: Credentials
    clock: Clock
    metrics: ApiMetrics
    _place_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @property
    def livekit_url(self) -> str:
        return ws_url(self.settings.livekit_url)

    # ---- scene context ------------------------------------------------------------------------
    def scene_context(
        self, signer: str, metadata: dict[str, Any], *, scene_message: str
    ) -> SceneContext:
        realm = metadata.get("realm")
        if not realm:
            raise ApiError(401, e.NO_REALM)
        if not isinstance(realm, dict):
            raise ApiError(400, "realm in authMetadata must be an object")
        scene_id = metadata.get("sceneId")
        if not scene_id:
            raise ApiError(400, scene_message)
        server_name = realm.get("serverName")
        if not isinstance(scene_id, str) or len(scene_id) > 256:
            raise ApiError(
                400, "sceneId in authMetadata must be a string of at most 256 characters"
            )
        if not isinstance(server_name, str) or not server_name or len(server_name) > 256:
            raise ApiError(400, "realm.serverName is required in authMetadata")
        hostname = realm.get("hostname")
        world = is_world_hostname(hostname) if isinstance(hostname, str) else False
        parcel = metadata.get("parcel")
        return SceneContext(
            signer=signer,
            scene_id=scene_id,
            realm_name=server_name,
            is_world=world,
            parcel=parcel if isinstance(parcel, str) else None,
            room=room_for(
                scene_prefix=self.settings.scene_room_prefix,
                world_prefix=self.settings.world_room_prefix,
                is_world=world,
                realm_name=server_name,
                scene_id=scene_id,
            ),
        )

    # ---- generate-stream-link ---------------------------------------------------------------
    async def _resolve_place(self, *, world_name: str | None, parcel: str | None) -> Place:
        """A world scene place (by name and parcel, or by name alone) or a Genesis place by
        parcel, with the reference's 404 messages. Malformed parcels never reach upstreams."""
        if world_name is not None:
            if parcel is None:
                place = await guarded(self.directory.world_by_name(world_name.lower()))
                if place is None:
                    raise ApiError(404, f"No world found with name {world_name}")
                return place
            place = None
            if is_parcel(parcel):
                place = await guarded(self.directory.world_place(world_name.lower(), parcel))
            if place is None:
                raise ApiError(
                    404, f"No world scene place found for world {world_name} at position {parcel}"
                )
            return place
        parcel = parcel if parcel is not None else "undefined"
        place = await guarded(self.directory.place_by_parcel(parcel)) if is_parcel(parcel) else None
        if place is None:
            raise ApiError(404, f"No place found with parcel {parcel}")
        return place

    async def generate(self, signer: str, metadata: dict[str, Any]) -> dict[str, Any]:
        ctx = self.scene_context(
            signer,
            metadata,
            scene_message="sceneId is required in authMetadata for Cast2 chat functionality",
        )
        place = await self._resolve_place(
            world_name=ctx.realm_name if ctx.is_world else None, parcel=ctx.parcel
        )
        if not await guarded(self.directory.is_admin(place, ctx.signer)):
            raise ApiError(403, e.NOT_ADMIN_GENERATE)
        lock = self._place_locks.setdefault(place.id, asyncio.Lock())
        async with lock:
            link = await self._obtain_link(ctx, place)
        now = self.clock.now()
        key = self.keys.streaming_key(link.name, link.uid)
        expires = link.expiration_time
        base = self.settings.cast2_url or "https://cast2.decentraland.org"
        return {
            "streamLink": f"{base}/s/{key}",
            "watcherLink": f"{base}/w/{place.location}",
            "streamingKey": key,
            "placeId": place.id,
            "placeName": place.display_name,
            "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{expires.microsecond // 1000:03d}Z",
            "expiresInDays": max(0, math.ceil((expires - now).total_seconds() / 86_400)),
        }

    async def _obtain_link(self, ctx: SceneContext, place: Place) -> StreamLink:
        """One active link per place: reuse it, or create the next one and supersede the rest.

        Links of a place are numbered; two replicas racing to create number N collide on the
        apiserver's name uniqueness, and the loser adopts the winner's link.
        """
        for _ in range(MAX_GENERATE_ATTEMPTS):
            now = self.clock.now()
            links = self.store.by_place(place.id)
            active = [link for link in links if link.usable(now)]
            same_room = latest([link for link in active if link.room == ctx.room])
            if same_room is not None:
                return same_room
            foreign = [
                link
                for link in self.store.by_room(ctx.room)
                if link.usable(now) and link.place.id != place.id
            ]
            if foreign:
                raise ApiError(403, "This scene's room is streaming for another place")
            sequence = max((link.sequence for link in links), default=0) + 1
            draft = StreamLinkDraft(
                name=link_name(place.id, sequence),
                place=PlaceRef(
                    id=place.id, name=place.display_name, location=place.location, world=place.world
                ),
                scene_id=ctx.scene_id,
                realm=ctx.realm_name,
                room=ctx.room,
                generated_by=ctx.signer,
                expiration_time=now.replace(microsecond=0)
                + timedelta(seconds=self.settings.link_ttl),
            )
            try:
                created = await guarded(self.store.create(draft))
            except AlreadyExists:
                # Someone else created that number: learn it and decide again.
                await guarded(self.store.get(draft.name))
                continue
            except Invalid as exc:
                log.error("apiserver refused a new StreamLink: %s", exc)
                raise ApiError(400, "The scene's stream link could not be stored") from None
            for old in active:
                await self._supersede(old)
            log.info("created StreamLink %s for place %s room %s", created.name, place.id, ctx.room)
            return created
        raise ApiError(503, e.STORE_UNAVAILABLE)

    async def _supersede(self, old: StreamLink) -> None:
        try:
            await update_spec(
                self.store,
                old.name,
                lambda link: (
                    None if link.revoked else {"revoked": True, "revocationReason": "Superseded"}
                ),
            )
        except (StoreError, NotFound) as exc:
            # The new link is already the latest, which every reader prefers; the operator's
            # expiry of the old one still ends it. Not worth failing the caller for.
            log.warning("could not mark %s superseded: %s", old.name, type(exc).__name__)

    # ---- streaming keys ---------------------------------------------------------------------
    async def link_for_key(self, key: str) -> StreamLink | None:
        name = link_name_from_key(key)
        if name is None:
            return None
        link = await guarded(self.store.get(name))
        if link is None or not self.keys.verify(key, link.name, link.uid):
            return None
        return link

    async def _usable_key_link(self, key: str) -> StreamLink:
        link = await self.link_for_key(key)
        if link is None or link.revoked or link.deleting:
            raise ApiError(401, e.INVALID_TOKEN)
        if link.expired(self.clock.now()):
            raise ApiError(401, e.EXPIRED_TOKEN)
        return link

    async def streamer_token(self, key: str, display_name: str) -> dict[str, Any]:
        link = await self._usable_key_link(key)
        identity = identities.streamer_identity(link.place.id)
        token = mint_token(
            self.credentials,
            role=Role.STREAMER,
            identity=identity,
            room=link.room,
            display_name=display_name,
            link_name=link.name,
        )
        self.metrics.token_minted(Role.STREAMER)
        # Streamers are presenters, as in the reference; the operator removes them at link end.
        await guarded(
            self.rooms.change_metadata(
                link.room,
                lambda md: room_metadata.with_presenters_added(md, [identity]),
                create=True,
            )
        )
        return {"url": self.livekit_url, "token": token, "roomId": link.room, "identity": identity}

    async def bot_token(self, key: str) -> dict[str, Any]:
        link = await self._usable_key_link(key)
        identity = identities.bot_identity(link.room)
        token = mint_token(
            self.credentials,
            role=Role.PRESENTATION_BOT,
            identity=identity,
            room=link.room,
            link_name=link.name,
        )
        self.metrics.token_minted(Role.PRESENTATION_BOT)
        return {"url": self.livekit_url, "token": token, "roomId": link.room}

    async def stream_info(self, key: str) -> dict[str, Any]:
        if not key:
            raise ApiError(400, "Streaming key is required")
        link = await self.link_for_key(key)
        if link is None or link.revoked or link.deleting:
            raise ApiError(400, "Invalid streaming key")
        if link.expired(self.clock.now()):
            raise ApiError(400, "Stream access has expired")
        return {
            "placeName": link.place.location,
            "placeId": link.place.id,
            "location": link.place.location,
            "isWorld": link.place.world,
        }

    # ---- watcher-token ----------------------------------------------------------------------
    async def watcher_token(
        self, location: str, display_name: str, parcel: str | None
    ) -> dict[str, Any]:
        world = is_world_name(location)
        place = await self._resolve_place(
            world_name=location if world else None, parcel=parcel if world else location
        )
        link = latest(
            [lk for lk in self.store.by_place(place.id) if not lk.revoked and not lk.deleting]
        )
        if link is None:
            raise ApiError(404, f"No active stream found for {location}")
        if link.expired(self.clock.now()):
            raise ApiError(401, e.WATCH_EXPIRED)
        identity = identities.watcher_identity(link.room)
        token = mint_token(
            self.credentials,
            role=Role.WATCHER,
            identity=identity,
            room=link.room,
            display_name=display_name,
        )
        self.metrics.token_minted(Role.WATCHER)
        return {
            "url": self.livekit_url,
            "token": token,
            "roomId": link.room,
            "identity": identity,
            "placeName": place.title or place.world_name or location,
        }

    # ---- presenters -------------------------------------------------------------------------
    async def _admin_link(self, signer: str, metadata: dict[str, Any]) -> StreamLink:
        ctx = self.scene_context(
            signer, metadata, scene_message="sceneId is required in authMetadata"
        )
        now = self.clock.now()
        link = latest([lk for lk in self.store.by_room(ctx.room) if lk.usable(now)])
        if link is None:
            raise ApiError(404, f"No active stream found for {ctx.room}")
        place = await guarded(self.directory.place_by_id(link.place.id))
        if place is None:
            raise ApiError(404, f"No places found with ids {link.place.id}")
        if not await guarded(self.directory.is_admin(place, ctx.signer)):
            raise ApiError(403, e.NOT_ADMIN_PRESENTERS)
        return link

    async def presenters(self, signer: str, metadata: dict[str, Any]) -> list[str]:
        link = await self._admin_link(signer, metadata)
        current = await guarded(self.rooms.room_metadata(link.room))
        return room_metadata.presenters(current or {})

    async def promote(self, signer: str, metadata: dict[str, Any], identity: str) -> None:
        link = await self._admin_link(signer, metadata)

        def add(current: StreamLink) -> dict[str, Any] | None:
            if identity in current.presenters:
                return None
            if len(current.presenters) >= MAX_PRESENTERS:
                raise ApiError(400, f"A stream link can have at most {MAX_PRESENTERS} presenters")
            return {"presenters": [*current.presenters, identity]}

        await self._record(link.name, add)
        await guarded(
            self.rooms.change_metadata(
                link.room,
                lambda md: room_metadata.with_presenters_added(md, [identity]),
                create=True,
            )
        )

    async def demote(self, signer: str, metadata: dict[str, Any], identity: str) -> None:
        link = await self._admin_link(signer, metadata)

        def remove(current: StreamLink) -> dict[str, Any] | None:
            if identity not in current.presenters:
                return None
            return {"presenters": [p for p in current.presenters if p != identity]}

        await self._record(link.name, remove)
        await guarded(
            self.rooms.change_metadata(
                link.room,
                lambda md: room_metadata.with_presenters_removed(md, [identity]),
                create=False,
            )
        )

    async def _record(
        self, name: str, change: Callable[[StreamLink], dict[str, Any] | None]
    ) -> None:
        try:
            await guarded(update_spec(self.store, name, change))
        except NotFound:
            raise ApiError(404, "No active stream found") from None
        except StoreError:
            raise ApiError(503, e.STORE_UNAVAILABLE) from None
