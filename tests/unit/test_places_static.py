"""Static place directory (CAST_PLACES_FILE) and the extra-admins file (CAST_PLACE_ADMINS_FILE)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cast_core.places_static import PlacesFileError, StaticPlaceDirectory, load_place_admins

YAML = """
places:
  - id: plaza
    title: Plaza
    base_position: "10,20"
    positions: ["10,20", "10,21"]
    owner: "0xAAAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    admins: ["0xBBBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]
  - id: world
    world: true
    world_name: Club.dcl.eth
    positions: ["0,0"]
"""


@pytest.fixture
def directory(tmp_path: Path) -> StaticPlaceDirectory:
    file = tmp_path / "places.yaml"
    file.write_text(YAML)
    return StaticPlaceDirectory.from_file(file)


async def test_lookups(directory: StaticPlaceDirectory) -> None:
    plaza = await directory.place_by_parcel("10,21")
    assert plaza is not None and plaza.id == "plaza" and plaza.location == "10,20"
    assert await directory.place_by_parcel("9,9") is None
    world = await directory.world_by_name("club.dcl.eth")
    assert world is not None and world.world and world.location == "Club.dcl.eth"
    assert world.base_position == "0,0"
    assert await directory.world_place("CLUB.dcl.eth", "0,0") == world
    assert await directory.world_place("club.dcl.eth", "5,5") is None
    assert await directory.place_by_id("plaza") == plaza
    assert await directory.place_by_id("nope") is None


async def test_admins_case_insensitive(directory: StaticPlaceDirectory) -> None:
    plaza = await directory.place_by_id("plaza")
    assert plaza is not None
    assert await directory.is_admin(plaza, "0x" + "a" * 40)
    assert await directory.is_admin(plaza, "0x" + "B" * 40)
    assert not await directory.is_admin(plaza, "0x" + "c" * 40)


def test_json_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "places.json"
    file.write_text(json.dumps({"places": [{"id": "p", "positions": ["1,1"]}]}))
    assert StaticPlaceDirectory.from_file(file)


@pytest.mark.parametrize(
    "content", ["places: 3", "[]", "places:\n  - title: no id", ": : :", "places:\n  - id: ''"]
)
def test_bad_files_fail_clearly(tmp_path: Path, content: str) -> None:
    file = tmp_path / "places.yaml"
    file.write_text(content)
    with pytest.raises(PlacesFileError):
        StaticPlaceDirectory.from_file(file)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlacesFileError, match="cannot read"):
        StaticPlaceDirectory.from_file(tmp_path / "absent.yaml")


def test_place_admins_file(tmp_path: Path) -> None:
    file = tmp_path / "admins.yaml"
    file.write_text("admins:\n  plaza: ['0xABC']\n")
    assert load_place_admins(file) == {"plaza": ["0xabc"]}
    file.write_text("admins: [1, 2]")
    with pytest.raises(PlacesFileError):
        load_place_admins(file)
