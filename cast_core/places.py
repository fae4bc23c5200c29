"""The place directory: which place a parcel or world is, and who administers it.

Two backends implement PlaceDirectory: `static` (a YAML file, places_static) and `decentraland`
(Places API, Lambdas, Worlds content server, land-lease list; places_decentraland).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

PARCEL = re.compile(r"^-?[0-9]{1,3},-?[0-9]{1,3}$")


class DirectoryUnavailable(Exception):
    """An upstream of the directory failed or timed out: routes answer 503."""


class InvalidPlace(Exception):
    """The place cannot be evaluated (e.g. a world name without .eth): routes answer 400."""


@dataclass(frozen=True)
class Place:
    id: str
    title: str = ""
    world: bool = False
    world_name: str | None = None
    base_position: str | None = None
    positions: tuple[str, ...] = ()

    @property
    def location(self) -> str:
        """World name for worlds, else the base parcel (reference §4.4 watcherLink)."""
        return self.world_name or self.base_position or "none"

    @property
    def display_name(self) -> str:
        return self.title or self.id


def is_parcel(value: str) -> bool:
    return PARCEL.fullmatch(value) is not None


def is_world_name(value: str) -> bool:
    # Case-sensitive suffix test, as the reference's watcher route does.
    return value.endswith(".eth")


class PlaceDirectory(Protocol):
    async def place_by_parcel(self, parcel: str) -> Place | None: ...

    async def world_place(self, world_name: str, parcel: str) -> Place | None:
        """The scene place of a world at a parcel (Places `?positions=&names=`)."""
        ...

    async def world_by_name(self, world_name: str) -> Place | None: ...

    async def place_by_id(self, place_id: str) -> Place | None: ...

    async def is_admin(self, place: Place, address: str) -> bool:
        """Whether the (lowercased) address may manage streams of the place."""
        ...

    async def aclose(self) -> None: ...
