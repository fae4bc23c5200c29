"""The `decentraland` place directory against a local fake of its upstreams.

The fake is a real HTTP server (Starlette app, uvicorn, 127.0.0.1, ephemeral port) serving the
reference's response shapes (reference-behavior §10) and recording every request as received,
so URL encoding is checked on the wire. Time-based behaviour uses a FakeClock: no test sleeps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cast_core.clock import FakeClock
from cast_core.places import DirectoryUnavailable, InvalidPlace, Place
from cast_core.places_decentraland import (
    CACHE_TTL_SECONDS,
    MAX_BODY_BYTES,
    DecentralandPlaceDirectory,
    world_owner_name,
)
from cast_core.ttl_cache import TtlCache
from tests.support.fake_upstreams import (
    FakeUpstreams,
    allow_listed,
    place_json,
    world_rights_json,
)

ADDR = "0x" + "ab" * 20
ADDR_MIXED = "0x" + "aB" * 20
OTHER = "0x" + "cd" * 20


@pytest.fixture
def upstream(fake_server: FakeUpstreams) -> FakeUpstreams:
    fake_server.reset()
    return fake_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_directory(
    upstream: FakeUpstreams,
    clock: FakeClock | None = None,
    *,
    timeout: float = 5.0,
    places_url: str | None = None,
    **kwargs: Any,
) -> DecentralandPlaceDirectory:
    return DecentralandPlaceDirectory(
        places_url or upstream.places_url,
        upstream.lambdas_url,
        upstream.worlds_url,
        upstream.lease_url,
        timeout=timeout,
        clock=clock,
        **kwargs,
    )


@pytest.fixture
async def directory(
    upstream: FakeUpstreams, clock: FakeClock
) -> AsyncIterator[DecentralandPlaceDirectory]:
    # Plain-HTTP fake: skipping the CA bundle load saves ~0.1 s per test. The directory's own
    # client is exercised by the tests that call make_directory() without one.
    async with httpx.AsyncClient(verify=False) as client:
        d = make_directory(upstream, clock, client=client)
        yield d
        await d.aclose()


GENESIS = Place(id="place-1", title="Plaza", base_position="-3,7", positions=("-3,7", "-3,8"))


def world(name: str, positions: tuple[str, ...] = ("0,0", "1,1")) -> Place:
    return Place(
        id="world-1", world=True, world_name=name, base_position="0,0", positions=positions
    )


NO_LAND = {
    "owner": False,
    "operator": False,
    "updateOperator": False,
    "updateManager": False,
    "approvedForAll": False,
}


# ------------------------------------------------------------------------------------------
# Place lookups: URL shapes, lowercasing, not-found


async def test_place_by_parcel_url_and_fields(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.places[("10,20", None)] = [
        place_json("p1", ["10,20", "10,21"], title="Genesis Plaza"),
        place_json("p2", ["10,20"]),
    ]
    place = await directory.place_by_parcel("10,20")
    assert place == Place(
        id="p1",
        title="Genesis Plaza",
        world=False,
        world_name=None,
        base_position="10,20",
        positions=("10,20", "10,21"),
    )
    [seen] = upstream.requests
    assert (seen.method, seen.path, seen.query) == ("GET", "/api/places", "positions=10%2C20")


async def test_place_by_parcel_not_found(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    assert await directory.place_by_parcel("99,99") is None


async def test_world_place_lowercases_the_name(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.places[("0,0", "myworld.dcl.eth")] = [
        place_json("w1", ["0,0"], world_name="myworld.dcl.eth")
    ]
    place = await directory.world_place("MyWorld.DCL.eth", "0,0")
    assert place is not None and place.world and place.world_name == "myworld.dcl.eth"
    assert upstream.requests[0].query == "positions=0%2C0&names=myworld.dcl.eth"
    assert await directory.world_place("MyWorld.DCL.eth", "5,5") is None


async def test_world_by_name(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.worlds["myworld.dcl.eth"] = place_json("w1", ["0,0"], world_name="myworld.dcl.eth")
    place = await directory.world_by_name("MyWorld.dcl.ETH")
    assert place is not None and place.id == "w1"
    assert upstream.requests[0].path == "/api/worlds/myworld.dcl.eth"
    assert await directory.world_by_name("nobody.dcl.eth") is None  # 404


async def test_world_by_name_without_data_is_none(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.raw["/api/worlds/"] = b'{"ok": true}'
    assert await directory.world_by_name("x.dcl.eth") is None


async def test_world_by_name_encodes_the_segment(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    assert await directory.world_by_name("a/b?c#d.eth") is None
    assert upstream.requests[0].path == "/api/worlds/a%2Fb%3Fc%23d.eth"
    assert upstream.requests[0].query == ""
    # Dot segments would be resolved away by URL normalisation: never sent.
    assert await directory.world_by_name("..") is None
    assert await directory.world_by_name(".") is None
    assert len(upstream.requests) == 1


async def test_place_by_id_posts_a_json_array(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.by_id["abc"] = {
        "id": "abc",
        "disabled": False,
        "world": False,
        "world_name": None,
        "base_position": "1,2",
        "positions": ["1,2"],
    }
    place = await directory.place_by_id("abc")
    assert place == Place(id="abc", base_position="1,2", positions=("1,2",))
    seen = upstream.requests[0]
    assert (seen.method, seen.path) == ("POST", "/api/places/status")
    assert json.loads(seen.body) == ["abc"]
    assert await directory.place_by_id("missing") is None


async def test_injection_reaches_the_upstream_encoded(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    # Reference §19.9: the location was concatenated into the URL, adding a `names` filter.
    assert await directory.place_by_parcel("0,0&names=x") is None
    [seen] = upstream.requests
    assert seen.query == "positions=0%2C0%26names%3Dx"
    assert seen.params == [("positions", "0,0&names=x")]


async def test_world_place_injection_is_encoded(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    await directory.world_place("w.eth&positions=9,9", "0,0#x")
    assert upstream.requests[0].params == [("positions", "0,0#x"), ("names", "w.eth&positions=9,9")]


async def test_places_400_means_no_such_place(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.fail["/api/places"] = 400
    assert await directory.place_by_parcel("nonsense") is None


async def test_overlong_values_are_not_looked_up(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    long = "1" * 300
    assert await directory.place_by_parcel(long) is None
    assert await directory.world_place(long + ".eth", "0,0") is None
    assert await directory.world_by_name(long + ".eth") is None
    assert await directory.place_by_id(long) is None
    assert await directory.place_by_parcel("") is None
    assert upstream.requests == []


# ------------------------------------------------------------------------------------------
# Admins, Genesis City (reference §11, §18.15)


async def test_land_owner_is_admin_and_url_is_lowercased(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.land[(ADDR, "-3", "7")] = {**NO_LAND, "owner": True}
    assert await directory.is_admin(GENESIS, ADDR_MIXED)
    assert [r.path for r in upstream.requests] == [
        f"/lambdas/users/{ADDR}/parcels/-3/7/permissions"
    ]


@pytest.mark.parametrize("flag", ["operator", "updateOperator", "updateManager", "approvedForAll"])
async def test_land_extended_permissions(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory, flag: str
) -> None:
    upstream.land[(ADDR, "-3", "7")] = {**NO_LAND, flag: True}
    assert await directory.is_admin(GENESIS, ADDR)


async def test_land_no_permissions_is_not_admin(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.land[(ADDR, "-3", "7")] = dict(NO_LAND)
    assert not await directory.is_admin(GENESIS, ADDR)
    # Not owner, no extended permission: the lease list was consulted too.
    assert [r.path for r in upstream.requests][-1] == "/leases.json"


async def test_parcel_permissions_404_is_not_admin(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    assert not await directory.is_admin(GENESIS, ADDR)
    assert upstream.seen("/lambdas/")[0].path.endswith("/parcels/-3/7/permissions")


async def test_parcel_permissions_5xx_is_unavailable(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.fail["/lambdas/"] = 502
    with pytest.raises(DirectoryUnavailable, match=r"^Lambdas unavailable: HTTP 502$"):
        await directory.is_admin(GENESIS, ADDR)


async def test_lessee_is_admin(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.leases = [
        {
            "name": "Lessee Inc",
            "desc": "",
            "contactInfo": {"name": "x"},
            "addresses": [ADDR_MIXED],
            "plots": ["-3,8"],
        },
        {"name": "Other", "addresses": [OTHER], "plots": ["50,50"]},
    ]
    assert await directory.is_admin(GENESIS, ADDR)
    assert not await directory.is_admin(GENESIS, OTHER)  # leases elsewhere


async def test_lease_list_is_fetched_once_for_concurrent_checks(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.leases = [{"addresses": [ADDR], "plots": ["-3,7"]}]
    upstream.delay["/leases.json"] = 0.2
    lessee, other = await asyncio.gather(
        directory.is_admin(GENESIS, ADDR), directory.is_admin(GENESIS, OTHER)
    )
    assert lessee and not other
    assert len(upstream.seen("/leases.json")) == 1


async def test_lease_list_errors_mean_not_a_lessee(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.fail["/leases.json"] = 500
    with caplog.at_level(logging.WARNING):
        assert not await directory.is_admin(GENESIS, ADDR)
    assert "land-lease list failed: HTTP 500" in caplog.text


async def test_lease_list_is_served_stale_on_error(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory, clock: FakeClock
) -> None:
    upstream.leases = [{"addresses": [ADDR], "plots": ["-3,7"]}]
    assert await directory.is_admin(GENESIS, ADDR)
    clock.advance(CACHE_TTL_SECONDS + 1)
    upstream.fail["/leases.json"] = 503
    assert await directory.is_admin(GENESIS, ADDR)
    assert len(upstream.seen("/leases.json")) == 2


async def test_extra_admins_need_no_upstream(upstream: FakeUpstreams) -> None:
    d = make_directory(upstream, extra_admins={"place-1": [ADDR_MIXED]})
    try:
        assert await d.is_admin(GENESIS, ADDR)
        assert await d.is_admin(GENESIS, ADDR_MIXED)
        assert upstream.requests == []
    finally:
        await d.aclose()


async def test_extra_admins_are_per_place(upstream: FakeUpstreams) -> None:
    d = make_directory(upstream, extra_admins={"another-place": [ADDR]})
    try:
        assert not await d.is_admin(GENESIS, ADDR)
    finally:
        await d.aclose()


async def test_non_addresses_are_never_admins(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    for who in ("alice", "0x1234", ADDR + "/../x", ""):
        assert not await directory.is_admin(GENESIS, who)
    assert upstream.requests == []


# ------------------------------------------------------------------------------------------
# Admins, worlds


async def test_dcl_world_owner(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.names[ADDR] = ["Other", "MyWorld"]
    assert await directory.is_admin(world("myworld.dcl.eth"), ADDR_MIXED)
    assert upstream.requests[0].path == f"/lambdas/users/{ADDR}/names"


async def test_world_names_are_lowercased_in_urls(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    assert not await directory.is_admin(world("MyWorld.DCL.eth"), ADDR)
    paths = {r.path for r in upstream.requests}
    assert paths == {
        f"/lambdas/users/{ADDR}/names",
        "/worlds/world/myworld.dcl.eth/permissions",
        f"/worlds/world/myworld.dcl.eth/permissions/streaming/address/{ADDR}/parcels",
        f"/worlds/world/myworld.dcl.eth/permissions/deployment/address/{ADDR}/parcels",
    }


async def test_dcl_name_holder_does_not_own_the_ens_world(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    # Reference §19.11: "foo.eth" was stripped to "foo" and matched against DCL NAMEs.
    upstream.names[ADDR] = ["foo"]  # ADDR holds foo.dcl.eth
    upstream.world_rights["foo.eth"] = world_rights_json(owner=OTHER)
    assert not await directory.is_admin(world("foo.eth"), ADDR)
    assert upstream.seen("/lambdas/") == []  # DCL NAMEs are not even asked


async def test_ens_world_owner_as_resolved_by_the_worlds_server(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.world_rights["foo.eth"] = world_rights_json(owner=ADDR_MIXED)
    assert await directory.is_admin(world("Foo.eth"), ADDR)
    assert [r.path for r in upstream.requests] == ["/worlds/world/foo.eth/permissions"]


async def test_ens_world_without_a_known_owner_is_not_owned(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.names[ADDR] = ["foo"]
    upstream.world_rights["foo.eth"] = world_rights_json()  # no `owner`: unproven
    assert not await directory.is_admin(world("foo.eth"), ADDR)


async def test_ens_holder_does_not_own_the_dcl_world(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.names[ADDR] = ["foobar"]
    upstream.world_rights["foo.eth"] = world_rights_json(owner=ADDR)
    assert not await directory.is_admin(world("foo.dcl.eth"), ADDR)


async def test_invalid_world_name(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    with pytest.raises(InvalidPlace) as err:
        await directory.is_admin(world("foo.com"), ADDR)
    assert str(err.value) == "Invalid world name: foo.com, should end with .dcl.eth or .eth"
    assert upstream.requests == []


def test_world_owner_name_rule() -> None:
    assert world_owner_name("Foo.DCL.eth") == ("dcl", "foo")
    assert world_owner_name("foo.eth") == ("ens", "foo.eth")
    assert world_owner_name("sub.foo.eth") == ("ens", "sub.foo.eth")
    with pytest.raises(InvalidPlace):
        world_owner_name(None)


@pytest.mark.parametrize("kind", ["streaming", "deployment"])
async def test_world_allow_list_world_wide(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory, kind: str
) -> None:
    upstream.world_rights["w.dcl.eth"] = allow_listed(kind, ADDR_MIXED)
    # Parcels endpoint 404s for this address: no parcel scope ⇒ world-wide.
    assert await directory.is_admin(world("w.dcl.eth"), ADDR)


async def test_world_allow_list_with_empty_parcel_scope_is_world_wide(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.world_rights["w.dcl.eth"] = world_rights_json(streaming=[ADDR])
    upstream.world_parcels[("w.dcl.eth", "streaming", ADDR)] = []
    assert await directory.is_admin(world("w.dcl.eth"), ADDR)


@pytest.mark.parametrize("kind", ["streaming", "deployment"])
async def test_world_allow_list_parcel_scoped_to_this_scene(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory, kind: str
) -> None:
    upstream.world_rights["w.dcl.eth"] = allow_listed(kind, ADDR)
    upstream.world_parcels[("w.dcl.eth", kind, ADDR)] = ["7,7", "1,1"]
    assert await directory.is_admin(world("w.dcl.eth", ("0,0", "1,1")), ADDR)


@pytest.mark.parametrize("kind", ["streaming", "deployment"])
async def test_world_allow_list_parcel_scoped_to_another_scene(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory, kind: str
) -> None:
    upstream.world_rights["w.dcl.eth"] = allow_listed(kind, ADDR)
    upstream.world_parcels[("w.dcl.eth", kind, ADDR)] = ["7,7"]
    assert not await directory.is_admin(world("w.dcl.eth", ("0,0", "1,1")), ADDR)


async def test_unrestricted_streaming_grants_nothing(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.world_rights["w.dcl.eth"] = world_rights_json(
        streaming=[ADDR], streaming_type="unrestricted"
    )
    assert not await directory.is_admin(world("w.dcl.eth"), ADDR)


async def test_world_no_permissions_is_not_admin(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.world_rights["w.dcl.eth"] = world_rights_json(streaming=[OTHER], owner=OTHER)
    assert not await directory.is_admin(world("w.dcl.eth"), ADDR)


async def test_world_parcels_5xx_is_unavailable(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.fail["/worlds/world/w.dcl.eth/permissions/"] = 500
    with pytest.raises(DirectoryUnavailable, match="Worlds content server unavailable: HTTP 500"):
        await directory.is_admin(world("w.dcl.eth"), ADDR)


# ------------------------------------------------------------------------------------------
# Cache and in-flight de-duplication


async def test_second_call_is_served_from_cache_until_the_ttl(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory, clock: FakeClock
) -> None:
    upstream.places[("1,1", None)] = [place_json("p1", ["1,1"])]
    first = await directory.place_by_parcel("1,1")
    clock.advance(CACHE_TTL_SECONDS - 1)
    assert await directory.place_by_parcel("1,1") == first
    assert len(upstream.requests) == 1
    clock.advance(2)
    assert await directory.place_by_parcel("1,1") == first
    assert len(upstream.requests) == 2


async def test_not_found_is_cached_too(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    assert await directory.place_by_parcel("5,5") is None
    assert await directory.place_by_parcel("5,5") is None
    assert len(upstream.requests) == 1


async def test_admin_answers_are_cached(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.world_rights["w.dcl.eth"] = world_rights_json(streaming=[ADDR])
    assert await directory.is_admin(world("w.dcl.eth"), ADDR)
    count = len(upstream.requests)
    assert await directory.is_admin(world("w.dcl.eth"), ADDR)
    assert len(upstream.requests) == count


async def test_failures_are_not_cached(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.fail["/api/places"] = 503
    with pytest.raises(DirectoryUnavailable):
        await directory.place_by_parcel("1,1")
    del upstream.fail["/api/places"]
    upstream.places[("1,1", None)] = [place_json("p1", ["1,1"])]
    place = await directory.place_by_parcel("1,1")
    assert place is not None and place.id == "p1"


async def test_concurrent_identical_calls_share_one_request(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.places[("1,1", None)] = [place_json("p1", ["1,1"])]
    upstream.delay["/api/places"] = 0.2
    a, b = await asyncio.gather(directory.place_by_parcel("1,1"), directory.place_by_parcel("1,1"))
    assert a == b and a is not None
    assert len(upstream.requests) == 1


async def test_a_shared_failure_is_one_request_and_one_log_line(
    upstream: FakeUpstreams,
    directory: DecentralandPlaceDirectory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream.delay["/api/places"] = 0.2
    upstream.fail["/api/places"] = 500
    with caplog.at_level(logging.WARNING, logger="cast_core.places_decentraland"):
        results = await asyncio.gather(
            directory.place_by_parcel("1,1"),
            directory.place_by_parcel("1,1"),
            return_exceptions=True,
        )
    assert all(isinstance(r, DirectoryUnavailable) for r in results)
    assert len(upstream.requests) == 1
    assert [r.getMessage() for r in caplog.records] == ["upstream Places API failed: HTTP 500"]


async def test_a_cancelled_caller_does_not_cancel_the_shared_request(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.places[("1,1", None)] = [place_json("p1", ["1,1"])]
    upstream.delay["/api/places"] = 0.2
    first = asyncio.create_task(directory.place_by_parcel("1,1"))
    second = asyncio.create_task(directory.place_by_parcel("1,1"))
    await asyncio.sleep(0)  # let both join the in-flight request
    first.cancel()
    place = await second
    assert place is not None and place.id == "p1"
    assert first.cancelled()
    assert len(upstream.requests) == 1


async def test_ttl_cache_is_a_bounded_lru() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(ttl=10, max_entries=2, now=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.lookup("a") == (1,)  # a is now the most recently used
    cache.put("c", 3)
    assert cache.lookup("b") is None  # least recently used went first
    assert cache.lookup("a") == (1,) and cache.lookup("c") == (3,)
    assert len(cache) == 2
    now[0] = 10.0
    assert cache.lookup("a") is None  # expired at exactly ttl
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        return 7

    assert await cache.get_or_load("d", load) == 7
    assert await cache.get_or_load("d", load) == 7
    assert calls == 1


# ------------------------------------------------------------------------------------------
# Failures map to DirectoryUnavailable


async def test_timeout_is_unavailable(upstream: FakeUpstreams) -> None:
    upstream.delay["/api/places"] = 1.0
    d = make_directory(upstream, timeout=0.2)
    try:
        with pytest.raises(DirectoryUnavailable, match=r"^Places API unavailable: timed out$"):
            await d.place_by_parcel("1,1")
    finally:
        await d.aclose()


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_upstream_errors_are_unavailable(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory, status: int
) -> None:
    upstream.fail["/api/"] = status
    with pytest.raises(DirectoryUnavailable, match=rf"^Places API unavailable: HTTP {status}$"):
        await directory.place_by_parcel("1,1")
    with pytest.raises(DirectoryUnavailable):
        await directory.world_by_name("x.dcl.eth")  # 5xx here is an outage, not "no world"
    with pytest.raises(DirectoryUnavailable):
        await directory.place_by_id("abc")


async def test_malformed_json_is_unavailable(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.raw["/api/places"] = b"<html>oops</html>"
    with pytest.raises(DirectoryUnavailable, match=r"^Places API unavailable: invalid JSON"):
        await directory.place_by_parcel("1,1")


@pytest.mark.parametrize(
    "body", [b'{"data": 5}', b"[]", b'{"data": [{"title": "no id"}]}', b'{"data": [{"id": 1}]}']
)
async def test_wrong_shape_is_unavailable(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory, body: bytes
) -> None:
    upstream.raw["/api/places"] = body
    with pytest.raises(DirectoryUnavailable, match=r"^Places API unavailable: invalid response"):
        await directory.place_by_parcel("1,1")


async def test_oversized_body_is_unavailable(
    upstream: FakeUpstreams, directory: DecentralandPlaceDirectory
) -> None:
    upstream.raw["/lambdas/"] = b'{"elements": []' + b" " * MAX_BODY_BYTES + b"}"
    with pytest.raises(DirectoryUnavailable, match="Lambdas unavailable: response larger than"):
        await directory.is_admin(world("w.dcl.eth"), ADDR)


async def test_connection_refused_is_unavailable(upstream: FakeUpstreams) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    d = make_directory(upstream, places_url=f"http://127.0.0.1:{port}/api")
    try:
        with pytest.raises(
            DirectoryUnavailable, match=r"^Places API unavailable: connection error"
        ):
            await d.place_by_parcel("1,1")
    finally:
        await d.aclose()


async def test_no_secrets_in_messages_or_logs(
    upstream: FakeUpstreams, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.fail["/api/"] = 503
    url = upstream.places_url.replace("http://", "http://user:s3cr3t@")
    d = make_directory(upstream, places_url=url)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(DirectoryUnavailable) as err:
            await d.place_by_parcel("1,1")
    finally:
        await d.aclose()
    assert "s3cr3t" not in str(err.value)
    assert "s3cr3t" not in caplog.text


# ------------------------------------------------------------------------------------------
# Client lifecycle


async def test_aclose_closes_only_its_own_client(upstream: FakeUpstreams) -> None:
    own = make_directory(upstream)
    await own.aclose()
    assert own._client.is_closed

    async with httpx.AsyncClient() as client:
        shared = make_directory(upstream, client=client)
        upstream.places[("1,1", None)] = [place_json("p1", ["1,1"])]
        assert await shared.place_by_parcel("1,1") is not None
        await shared.aclose()
        assert not client.is_closed
