"""LiveKit room names, as in-world clients compute them (reference-behavior §8)."""

from __future__ import annotations

import hashlib


def scene_room(prefix: str, realm_name: str, scene_id: str) -> str:
    return f"{prefix}{realm_name}:{scene_id}"


def world_room(prefix: str, world_name: str, scene_id: str) -> str:
    return f"{prefix}{world_name}-{scene_id}"


def room_for(
    *, scene_prefix: str, world_prefix: str, is_world: bool, realm_name: str, scene_id: str
) -> str:
    if is_world:
        return world_room(world_prefix, realm_name, scene_id)
    return scene_room(scene_prefix, realm_name, scene_id)


def is_world_hostname(hostname: str) -> bool:
    # The reference decides world-ness from the realm hostname; kept for client compatibility.
    return "worlds-content-server" in hostname


def room_label(room: str) -> str:
    """Label-safe stand-in for a room name (room names contain ':' and may be long)."""
    return hashlib.sha256(room.encode()).hexdigest()[:40]
