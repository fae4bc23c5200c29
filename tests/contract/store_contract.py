"""The StreamLinkStore contract. The same cases run against the in-memory store (fast tier) and
the Kubernetes store on a real apiserver (e2e tier), so the fake can't drift from the real thing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cast_core.model import PlaceRef, StreamLinkDraft, link_name
from cast_core.store import (
    AlreadyExists,
    Conflict,
    Invalid,
    NotFound,
    StreamLinkStore,
    update_spec,
)


def draft(place_id: str | None = None, sequence: int = 1) -> StreamLinkDraft:
    place_id = place_id or f"place-{uuid.uuid4()}"
    return StreamLinkDraft(
        name=link_name(place_id, sequence),
        place=PlaceRef(id=place_id, name="Plaza", location="10,20", world=False),
        scene_id="bafyscene",
        realm="fenrir",
        room=f"scene-fenrir:{place_id}",
        generated_by="0xabc",
        expiration_time=datetime.now(UTC).replace(microsecond=0) + timedelta(days=4),
    )


class StoreContract:
    """Subclasses provide an async `store` fixture."""

    async def test_create_then_read(self, store: StreamLinkStore) -> None:
        d = draft()
        created = await store.create(d)
        assert created.name == d.name
        assert created.uid and created.resource_version
        assert created.generation == 1
        assert (created.place, created.room, created.scene_id) == (d.place, d.room, d.scene_id)
        assert created.expiration_time == d.expiration_time
        assert created.presenters == () and created.revoked is False
        got = await store.get(d.name)
        assert got is not None and got.uid == created.uid
        assert [link.name for link in store.by_place(d.place.id)] == [d.name]
        assert [link.name for link in store.by_room(d.room)] == [d.name]

    async def test_unknown_name(self, store: StreamLinkStore) -> None:
        assert await store.get(link_name(f"nowhere-{uuid.uuid4()}", 1)) is None
        assert store.by_place(f"nowhere-{uuid.uuid4()}") == []
        with pytest.raises(NotFound):
            await store.patch_spec(link_name(f"nowhere-{uuid.uuid4()}", 1), {"revoked": True})

    async def test_names_are_unique(self, store: StreamLinkStore) -> None:
        d = draft()
        await store.create(d)
        with pytest.raises(AlreadyExists):
            await store.create(d)

    async def test_patch_presenters_bumps_generation(self, store: StreamLinkStore) -> None:
        created = await store.create(draft())
        patched = await store.patch_spec(created.name, {"presenters": ["0xaa", "0xbb"]})
        assert patched.presenters == ("0xaa", "0xbb")
        assert patched.generation == created.generation + 1
        assert patched.resource_version != created.resource_version

    async def test_stale_resource_version_conflicts(self, store: StreamLinkStore) -> None:
        created = await store.create(draft())
        await store.patch_spec(created.name, {"presenters": ["0xaa"]})
        with pytest.raises(Conflict):
            await store.patch_spec(
                created.name, {"presenters": ["0xbb"]}, resource_version=created.resource_version
            )

    async def test_spec_is_immutable_except_presenters_and_revocation(
        self, store: StreamLinkStore
    ) -> None:
        created = await store.create(draft())
        with pytest.raises(Invalid):
            await store.patch_spec(created.name, {"room": "another-room"})
        with pytest.raises(Invalid):
            await store.patch_spec(created.name, {"expirationTime": "2099-01-01T00:00:00Z"})
        revoked = await store.patch_spec(
            created.name, {"revoked": True, "revocationReason": "Superseded"}
        )
        assert revoked.revoked and revoked.revocation_reason == "Superseded"

    async def test_revoked_never_goes_back(self, store: StreamLinkStore) -> None:
        created = await store.create(draft())
        await store.patch_spec(created.name, {"revoked": True})
        with pytest.raises(Invalid):
            await store.patch_spec(created.name, {"revoked": False})

    async def test_concurrent_read_modify_write_keeps_both(self, store: StreamLinkStore) -> None:
        created = await store.create(draft())

        def adding(identity: str):  # type: ignore[no-untyped-def]
            def change(link):  # type: ignore[no-untyped-def]
                if identity in link.presenters:
                    return None
                return {"presenters": [*link.presenters, identity]}

            return change

        await asyncio.gather(
            *(update_spec(store, created.name, adding(f"0x{i:040x}")) for i in range(4))
        )
        final = await store.get(created.name)
        assert final is not None

        async def settled() -> set[str]:
            link = await store.get(created.name)
            return set(link.presenters) if link else set()

        for _ in range(50):
            if len(await settled()) == 4:
                break
            await asyncio.sleep(0.1)
        assert await settled() == {f"0x{i:040x}" for i in range(4)}
