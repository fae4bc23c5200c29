"""Pure rules for LiveKit room metadata, which other services share (`bannedAddresses`,
`sceneAdmins`, …): always read-modify-write the whole object and keep unknown keys."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

PRESENTERS = "presenters"


def parse(raw: str | None) -> dict[str, Any]:
    """Absent or invalid metadata reads as an empty object (reference §12.1)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def dump(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, separators=(",", ":"))


def presenters(metadata: dict[str, Any]) -> list[str]:
    value = metadata.get(PRESENTERS)
    if not isinstance(value, list):
        return []
    return [p for p in value if isinstance(p, str)]


def with_presenters_added(metadata: dict[str, Any], identities: Iterable[str]) -> dict[str, Any]:
    current = presenters(metadata)
    added = [i for i in dict.fromkeys(identities) if i not in current]
    if not added and isinstance(metadata.get(PRESENTERS), list):
        return metadata
    return {**metadata, PRESENTERS: current + added}


def with_presenters_removed(metadata: dict[str, Any], identities: Iterable[str]) -> dict[str, Any]:
    gone = set(identities)
    current = presenters(metadata)
    kept = [p for p in current if p not in gone]
    if len(kept) == len(current):
        return metadata
    return {**metadata, PRESENTERS: kept}
