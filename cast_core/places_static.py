"""Static place directory from a YAML (or JSON) file, e.g. mounted from a ConfigMap:

places:
  - id: 4f3c…            # required
    title: Genesis Plaza
    world: false
    world_name: null      # "name.dcl.eth" for worlds
    base_position: "0,0"
    positions: ["0,0", "0,1"]
    owner: "0xabc…"
    admins: ["0xdef…"]

Admin = owner or a listed admin, case-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cast_core.places import Place

MAX_FILE_BYTES = 8 * 1024 * 1024


class PlacesFileError(ValueError):
    pass


def _load_yaml(path: str | Path) -> Any:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise PlacesFileError(f"{file} is larger than {MAX_FILE_BYTES} bytes")
        return yaml.safe_load(file.read_text(encoding="utf-8"))  # JSON is YAML too
    except (OSError, yaml.YAMLError) as exc:
        raise PlacesFileError(f"cannot read {file}: {exc}") from None


def load_place_admins(path: str | Path) -> dict[str, list[str]]:
    """Extra admins per place id (the role of the reference's scene_admin table):
    a mapping `admins: {<place id>: [0x…, …]}`."""
    data = _load_yaml(path)
    admins = data.get("admins") if isinstance(data, dict) else None
    if not isinstance(admins, dict) or not all(
        isinstance(k, str) and isinstance(v, list) for k, v in admins.items()
    ):
        raise PlacesFileError(f"{path} must hold a mapping 'admins: {{place id: [addresses]}}'")
    return {k: [str(a).lower() for a in v] for k, v in admins.items()}


@dataclass(frozen=True)
class _Entry:
    place: Place
    admins: frozenset[str]


def _entry(raw: Any, index: int) -> _Entry:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise PlacesFileError(f"places[{index}] needs a non-empty string id")
    positions = tuple(str(p) for p in raw.get("positions") or ())
    base = raw.get("base_position") or (positions[0] if positions else None)
    world_name = raw.get("world_name")
    place = Place(
        id=raw["id"],
        title=str(raw.get("title") or ""),
        world=bool(raw.get("world", bool(world_name))),
        world_name=str(world_name) if world_name else None,
        base_position=str(base) if base else None,
        positions=positions or ((str(base),) if base else ()),
    )
    admins = {str(a).lower() for a in raw.get("admins") or ()}
    if raw.get("owner"):
        admins.add(str(raw["owner"]).lower())
    return _Entry(place, frozenset(admins))


class StaticPlaceDirectory:
    def __init__(self, places: list[dict[str, Any]]) -> None:
        entries = [_entry(raw, i) for i, raw in enumerate(places)]
        self._by_id = {e.place.id: e for e in entries}
        self._by_parcel: dict[str, _Entry] = {}
        self._by_world: dict[str, list[_Entry]] = {}
        for e in entries:
            if e.place.world and e.place.world_name:
                self._by_world.setdefault(e.place.world_name.lower(), []).append(e)
            else:
                for parcel in e.place.positions:
                    self._by_parcel.setdefault(parcel, e)

    @classmethod
    def from_file(cls, path: str | Path) -> StaticPlaceDirectory:
        data = _load_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("places"), list):
            raise PlacesFileError(f"{path} must hold a mapping with a 'places' list")
        return cls(data["places"])

    async def place_by_parcel(self, parcel: str) -> Place | None:
        e = self._by_parcel.get(parcel)
        return e.place if e else None

    async def world_place(self, world_name: str, parcel: str) -> Place | None:
        candidates = self._by_world.get(world_name.lower(), [])
        for e in candidates:
            if parcel in e.place.positions or parcel == e.place.base_position:
                return e.place
        return None

    async def world_by_name(self, world_name: str) -> Place | None:
        candidates = self._by_world.get(world_name.lower(), [])
        return candidates[0].place if candidates else None

    async def place_by_id(self, place_id: str) -> Place | None:
        e = self._by_id.get(place_id)
        return e.place if e else None

    async def is_admin(self, place: Place, address: str) -> bool:
        e = self._by_id.get(place.id)
        return e is not None and address.lower() in e.admins

    async def aclose(self) -> None:
        return None
