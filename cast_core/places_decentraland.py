"""Decentraland place directory: Places API, Lambdas, Worlds content server, land-lease list.

Reference-behavior §10-§11, with its weaknesses fixed (§19 items 9, 11, 25):
- every user-supplied value is URL-encoded (path segments quoted, queries as httpx params);
- each upstream call has a deadline and a 2 MiB body cap; any failure (timeout, connection error,
  5xx, malformed JSON or shape) raises DirectoryUnavailable, which routes answer with 503;
- answers are cached 5 minutes (5000 entries) and concurrent identical calls share one request;
- an ENS world (`foo.eth`) is owned by its ENS owner as the Worlds content server resolves it,
  never by whoever holds the DCL NAME `foo` (`foo.dcl.eth`).

Lookups answer None for "no such place" (empty `data`, HTTP 400/404); only outages raise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast
from urllib.parse import quote

import httpx

from cast_core.clock import Clock
from cast_core.places import DirectoryUnavailable, InvalidPlace, Place, is_parcel
from cast_core.ttl_cache import TtlCache

if TYPE_CHECKING:
    from cast_core.settings import Settings

log = logging.getLogger(__name__)

CACHE_TTL_SECONDS: Final = 300.0
CACHE_MAX_ENTRIES: Final = 5000
MAX_BODY_BYTES: Final = 2 * 1024 * 1024
# Longer parcels, world names or ids are not looked up at all (ENS names are ≤ 255 bytes).
MAX_VALUE_CHARS: Final = 256
ADDRESS: Final = re.compile(r"0x[0-9a-f]{40}")

PLACES: Final = "Places API"
LAMBDAS: Final = "Lambdas"
WORLDS: Final = "Worlds content server"
LEASES: Final = "land-lease list"

# Lambdas parcel permissions that make an address a scene admin besides `owner` (§11.3).
LAND_OPERATOR_FLAGS: Final = ("operator", "updateOperator", "updateManager", "approvedForAll")

T = TypeVar("T")


class _Malformed(ValueError):
    """An upstream answered 2xx with a body of the wrong shape."""


class _Unroutable(ValueError):
    """A value that cannot be sent upstream safely (empty, dot segment, too long)."""


# --------------------------------------------------------------------------------------------
# Pure rules


def world_owner_name(world_name: str | None) -> tuple[Literal["dcl", "ens"], str]:
    """("dcl", label) for `label.dcl.eth`, ("ens", full name) for other `.eth` names.

    The reference strips both suffixes and matches DCL NAMEs, so `foo.dcl.eth`'s holder passed
    as owner of ENS world `foo.eth` (§19.11); keeping the kinds apart closes that.
    """
    name = (world_name or "").lower()
    if name.endswith(".dcl.eth"):
        return "dcl", name[: -len(".dcl.eth")]
    if name.endswith(".eth"):
        return "ens", name
    raise InvalidPlace(f"Invalid world name: {world_name}, should end with .dcl.eth or .eth")


@dataclass(frozen=True)
class LandRights:
    owner: bool
    operator: bool  # any of LAND_OPERATOR_FLAGS


@dataclass(frozen=True)
class WorldRights:
    owner: str | None  # lowercased address, None when the server can't tell
    streaming: frozenset[str]  # allow-listed wallets, lowercased
    deployment: frozenset[str]


NO_WORLD_RIGHTS: Final = WorldRights(None, frozenset(), frozenset())


def world_extended(
    rights: WorldRights,
    streaming_parcels: frozenset[str] | None,
    deployment_parcels: frozenset[str] | None,
    address: str,
    positions: Iterable[str],
) -> bool:
    """§11.3 for worlds: allow-listed world-wide (no parcel scope), or scoped to a scene parcel.

    `*_parcels` None means the Worlds server has no such permission for the address (404).
    """
    scene = set(positions)
    for wallets, parcels in (
        (rights.streaming, streaming_parcels),
        (rights.deployment, deployment_parcels),
    ):
        if address in wallets and not parcels:
            return True
        if parcels and not parcels.isdisjoint(scene):
            return True
    return False


def is_lessee(leases: Mapping[str, frozenset[str]], address: str, positions: Iterable[str]) -> bool:
    plots = leases.get(address)
    return plots is not None and not plots.isdisjoint(positions)


# --------------------------------------------------------------------------------------------
# Parsing upstream bodies (raise _Malformed on a wrong shape)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Malformed(f"{what} is not a list of strings")
    return value


def parse_place(raw: Any) -> Place:
    if not isinstance(raw, dict):
        raise _Malformed("place is not an object")
    place_id = raw.get("id")
    if not isinstance(place_id, str) or not place_id or len(place_id) > MAX_VALUE_CHARS:
        raise _Malformed("place has no valid id")
    positions = tuple(_str_list(raw.get("positions"), "positions"))
    return Place(
        id=place_id,
        title=_str_or_none(raw.get("title")) or "",
        world=raw.get("world") is True,
        world_name=_str_or_none(raw.get("world_name")),
        base_position=_str_or_none(raw.get("base_position")),
        positions=positions,
    )


def _first_place(body: Any) -> Place | None:
    """`{data: [Place, …]}` → the first place (Places `/places`, `/places/status`)."""
    if body is None:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise _Malformed("no data list")
    data = body["data"]
    return parse_place(data[0]) if data else None


def _world_place(body: Any) -> Place | None:
    """`{ok, data: Place}` (Places `/worlds/{name}`); no data → None."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise _Malformed("not an object")
    data = body.get("data")
    return parse_place(data) if data else None


def _names(body: Any) -> frozenset[str]:
    """Lambdas `/users/{addr}/names` → lowercased DCL NAME labels."""
    if not isinstance(body, dict):
        raise _Malformed("not an object")
    elements = body.get("elements") or []
    if not isinstance(elements, list):
        raise _Malformed("elements is not a list")
    return frozenset(
        e["name"].lower()
        for e in elements
        if isinstance(e, dict) and isinstance(e.get("name"), str)
    )


def _land_rights(body: Any) -> LandRights | None:
    if body is None:
        return None
    if not isinstance(body, dict):
        raise _Malformed("not an object")
    return LandRights(
        owner=body.get("owner") is True,
        operator=any(body.get(flag) is True for flag in LAND_OPERATOR_FLAGS),
    )


def _allow_list(setting: Any) -> frozenset[str]:
    if not isinstance(setting, dict) or setting.get("type") != "allow-list":
        return frozenset()  # unrestricted / other types grant nobody admin rights
    return frozenset(w.lower() for w in _str_list(setting.get("wallets"), "wallets"))


def _world_rights(body: Any) -> WorldRights:
    if body is None:
        return NO_WORLD_RIGHTS
    if not isinstance(body, dict):
        raise _Malformed("not an object")
    permissions = body.get("permissions") or {}
    if not isinstance(permissions, dict):
        raise _Malformed("permissions is not an object")
    owner = _str_or_none(body.get("owner"))
    return WorldRights(
        owner=owner.lower() if owner else None,
        streaming=_allow_list(permissions.get("streaming")),
        deployment=_allow_list(permissions.get("deployment")),
    )


def _world_parcels(body: Any) -> frozenset[str] | None:
    """`{total, parcels}` → the parcel scope ([] = world-wide); None when not found (404)."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise _Malformed("not an object")
    return frozenset(_str_list(body.get("parcels"), "parcels"))


def _leases(body: Any) -> dict[str, frozenset[str]]:
    """Authorizations `[{addresses, plots}, …]` → address (lowercased) → leased plots."""
    if not isinstance(body, list):
        raise _Malformed("not a list")
    plots_by_address: dict[str, set[str]] = {}
    for entry in body:
        if not isinstance(entry, dict):
            continue
        addresses = entry.get("addresses") or []
        plots = entry.get("plots") or []
        if not isinstance(addresses, list) or not isinstance(plots, list):
            continue
        plot_set = {p for p in plots if isinstance(p, str)}
        for address in addresses:
            if isinstance(address, str):
                plots_by_address.setdefault(address.lower(), set()).update(plot_set)
    return {a: frozenset(p) for a, p in plots_by_address.items()}


# --------------------------------------------------------------------------------------------
# URLs


def _split_credentials(url: str) -> tuple[str, httpx.BasicAuth | None]:
    """Move `user:password@` out of a configured URL: httpx logs every request URL at INFO."""
    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return url.rstrip("/"), None
    bare = str(parsed.copy_with(userinfo=b"")).rstrip("/")
    return bare, httpx.BasicAuth(parsed.username, parsed.password)


def _segment(value: str) -> str:
    # quote(safe="") encodes "/", "?", "#", "%"; dot segments would still be resolved by URL
    # normalisation (`/worlds/../x`), so they are refused outright.
    if not value or len(value) > MAX_VALUE_CHARS or value.strip(".") == "":
        raise _Unroutable(value[:16])
    return quote(value, safe="")


def _bounded(*values: str) -> bool:
    return all(0 < len(v) <= MAX_VALUE_CHARS for v in values)


# --------------------------------------------------------------------------------------------


class DecentralandPlaceDirectory:
    """PlaceDirectory over Decentraland's public services (see module docstring)."""

    def __init__(
        self,
        places_api_url: str,
        lambdas_url: str,
        world_content_url: str,
        land_lease_url: str,
        *,
        timeout: float,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        extra_admins: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._places, places_auth = _split_credentials(places_api_url)
        self._lambdas, lambdas_auth = _split_credentials(lambdas_url)
        self._worlds, worlds_auth = _split_credentials(world_content_url)
        self._lease_url, lease_auth = _split_credentials(land_lease_url)
        self._auth = {
            PLACES: places_auth,
            LAMBDAS: lambdas_auth,
            WORLDS: worlds_auth,
            LEASES: lease_auth,
        }
        self._timeout = timeout
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, headers={"user-agent": "cast-gatekeeper"}
        )
        now: Callable[[], float] = (lambda: clock.now().timestamp()) if clock else time.monotonic
        self._cache: TtlCache[tuple[str, ...], object] = TtlCache(
            ttl=CACHE_TTL_SECONDS, max_entries=CACHE_MAX_ENTRIES, now=now
        )
        # The role of the reference's `scene_admin` table: place id → admin addresses.
        self._extra_admins = {
            place_id: frozenset(a.lower() for a in admins)
            for place_id, admins in (extra_admins or {}).items()
        }
        self._last_leases: Mapping[str, frozenset[str]] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, *, extra_admins: Mapping[str, Iterable[str]] | None = None
    ) -> DecentralandPlaceDirectory:
        return cls(
            settings.places_api_url,
            settings.lambdas_url,
            settings.world_content_url,
            settings.land_lease_url,
            timeout=settings.upstream_timeout,
            extra_admins=extra_admins,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # ---- places ---------------------------------------------------------------------------

    async def place_by_parcel(self, parcel: str) -> Place | None:
        if not _bounded(parcel):
            return None
        return await self._get_place(("parcel", parcel), {"positions": parcel})

    async def world_place(self, world_name: str, parcel: str) -> Place | None:
        if not _bounded(world_name, parcel):
            return None
        name = world_name.lower()
        return await self._get_place(
            ("world_place", name, parcel), {"positions": parcel, "names": name}
        )

    async def world_by_name(self, world_name: str) -> Place | None:
        name = world_name.lower()
        try:
            url = f"{self._places}/worlds/{_segment(name)}"
        except _Unroutable:
            return None

        async def load() -> Place | None:
            body = await self._request(PLACES, "GET", url, absent=(400, 404))
            return self._parse(PLACES, _world_place, body)

        return await self._cached(("world", name), load)

    async def place_by_id(self, place_id: str) -> Place | None:
        if not _bounded(place_id):
            return None

        async def load() -> Place | None:
            body = await self._request(
                PLACES,
                "POST",
                f"{self._places}/places/status",
                json_body=[place_id],
                absent=(400, 404),
            )
            place = self._parse(PLACES, _first_place, body)
            return place if place is None or place.id == place_id else None

        return await self._cached(("id", place_id), load)

    async def _get_place(self, key: tuple[str, ...], params: dict[str, str]) -> Place | None:
        async def load() -> Place | None:
            # 400: Places rejected the parcel/name syntax, i.e. there is no such place.
            body = await self._request(
                PLACES, "GET", f"{self._places}/places", params=params, absent=(400, 404)
            )
            return self._parse(PLACES, _first_place, body)

        return await self._cached(key, load)

    # ---- admins (§11) -----------------------------------------------------------------------

    async def is_admin(self, place: Place, address: str) -> bool:
        # Validate the world name first: an invalid one is a 400 whoever asks (reference).
        world = world_owner_name(place.world_name) if place.world else None
        addr = address.lower()
        if addr in self._extra_admins.get(place.id, ()):
            return True
        if not ADDRESS.fullmatch(addr):
            return False  # no upstream can vouch for something that is not an address
        try:
            if world is not None:
                return await self._is_world_admin(place, world, addr)
            return await self._is_land_admin(place, addr)
        except _Unroutable:
            return False  # e.g. a 300-character world name: nothing upstream can vouch for it

    async def _is_world_admin(
        self, place: Place, world: tuple[Literal["dcl", "ens"], str], addr: str
    ) -> bool:
        kind, label = world
        name = (place.world_name or "").lower()
        if kind == "dcl" and label in await self._dcl_names(addr):
            return True
        rights = await self._world_rights(name)
        # ENS owner as the Worlds server resolves it (ENS registrar / NameWrapper); when it
        # cannot say (`owner` missing), ENS ownership is unproven and not granted.
        if kind == "ens" and rights.owner == addr:
            return True
        streaming, deployment = await asyncio.gather(
            self._world_parcels(name, "streaming", addr),
            self._world_parcels(name, "deployment", addr),
        )
        return world_extended(rights, streaming, deployment, addr, place.positions)

    async def _is_land_admin(self, place: Place, addr: str) -> bool:
        # The reference reads permissions of the first parcel only (§19.12, kept).
        first = place.positions[0] if place.positions else place.base_position
        if first and is_parcel(first):
            rights = await self._land_rights(addr, first)
            if rights is not None and (rights.owner or rights.operator):
                return True
        return is_lessee(await self._lease_map(), addr, place.positions)

    async def _dcl_names(self, addr: str) -> frozenset[str]:
        url = f"{self._lambdas}/users/{_segment(addr)}/names"

        async def load() -> frozenset[str]:
            return self._parse(LAMBDAS, _names, await self._request(LAMBDAS, "GET", url))

        return await self._cached(("names", addr), load)

    async def _land_rights(self, addr: str, parcel: str) -> LandRights | None:
        x, y = parcel.split(",")
        url = f"{self._lambdas}/users/{_segment(addr)}/parcels/{_segment(x)}/{_segment(y)}"
        url += "/permissions"

        async def load() -> LandRights | None:
            # 404: Lambdas knows no permissions for this address here ⇒ none (reference).
            body = await self._request(LAMBDAS, "GET", url, absent=(404,))
            return self._parse(LAMBDAS, _land_rights, body)

        return await self._cached(("land", addr, parcel), load)

    async def _world_rights(self, name: str) -> WorldRights:
        url = f"{self._worlds}/world/{_segment(name)}/permissions"

        async def load() -> WorldRights:
            # 404: no such world, so nobody is on its allow-lists (the reference answered 500).
            body = await self._request(WORLDS, "GET", url, absent=(404,))
            return self._parse(WORLDS, _world_rights, body)

        return await self._cached(("world_rights", name), load)

    async def _world_parcels(self, name: str, kind: str, addr: str) -> frozenset[str] | None:
        url = (
            f"{self._worlds}/world/{_segment(name)}/permissions/{kind}"
            f"/address/{_segment(addr)}/parcels"
        )

        async def load() -> frozenset[str] | None:
            # 404: the address has no such permission in this world (reference: "none").
            body = await self._request(WORLDS, "GET", url, absent=(404,))
            return self._parse(WORLDS, _world_parcels, body)

        return await self._cached(("world_parcels", name, kind, addr), load)

    async def _lease_map(self) -> Mapping[str, frozenset[str]]:
        async def load() -> Mapping[str, frozenset[str]]:
            leases = self._parse(
                LEASES, _leases, await self._request(LEASES, "GET", self._lease_url)
            )
            self._last_leases = leases
            return leases

        try:
            return await self._cached(("leases",), load)
        except DirectoryUnavailable:
            # Leases only ever add admins: an outage serves the last good list (stale-on-error),
            # or none, rather than failing the whole admin check (reference).
            return self._last_leases

    # ---- transport --------------------------------------------------------------------------

    async def _cached(self, key: tuple[str, ...], load: Callable[[], Awaitable[T]]) -> T:
        # One cache for every kind of answer; the key's first element names the kind, so a
        # key always maps to the type its loader returns.
        return cast(T, await self._cache.get_or_load(key, load))

    def _parse(self, upstream: str, parser: Callable[[Any], T], body: Any) -> T:
        try:
            return parser(body)
        except _Malformed as exc:
            raise self._failed(upstream, f"invalid response ({exc})") from None

    def _failed(self, upstream: str, detail: str) -> DirectoryUnavailable:
        # Logged here, inside the shared load, so one failure is logged once however many
        # callers were waiting on it. No URL: it may carry credentials or caller addresses.
        log.warning("upstream %s failed: %s", upstream, detail)
        return DirectoryUnavailable(f"{upstream} unavailable: {detail}")

    async def _request(
        self,
        upstream: str,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        absent: tuple[int, ...] = (),
    ) -> Any:
        """Parsed JSON body of a 2xx answer; None for a status in `absent`; else raises."""
        try:
            async with asyncio.timeout(self._timeout):  # whole call, not per read
                async with self._client.stream(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    auth=self._auth[upstream] or httpx.USE_CLIENT_DEFAULT,
                    timeout=self._timeout,
                ) as response:
                    status = response.status_code
                    if status in absent:
                        return None
                    if not 200 <= status < 300:
                        raise self._failed(upstream, f"HTTP {status}")
                    body = await _read_bounded(response)
        except (TimeoutError, httpx.TimeoutException):
            raise self._failed(upstream, "timed out") from None
        except _TooLarge:
            raise self._failed(upstream, f"response larger than {MAX_BODY_BYTES} bytes") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._failed(upstream, f"connection error ({type(exc).__name__})") from None
        try:
            return json.loads(body)
        except ValueError:
            raise self._failed(upstream, f"invalid JSON (HTTP {status})") from None


class _TooLarge(Exception):
    pass


async def _read_bounded(response: httpx.Response) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    data = bytearray()
    async for chunk in response.aiter_bytes():  # decoded size, so compression can't inflate it
        data += chunk
        if len(data) > MAX_BODY_BYTES:
            raise _TooLarge
    return bytes(data)
