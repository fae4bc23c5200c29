"""Participant identities (reference-behavior §7) and presenter identity rules (§12.2)."""

from __future__ import annotations

import re
import uuid

_ETH_ADDRESS = re.compile(r"^0x[a-fA-F0-9]{40}$")
_STREAMER = re.compile(
    r"^stream:[^:]+:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)

INVALID_PRESENTER_MESSAGE = (
    "participantIdentity must be a valid Ethereum address or streamer identity"
)


def streamer_identity(place_id: str) -> str:
    return f"stream:{place_id}:{uuid.uuid4()}"


def watcher_identity(room: str) -> str:
    return f"watch:{room}:{uuid.uuid4()}"


def bot_identity(room: str) -> str:
    return f"presentation-bot:{room}:{uuid.uuid4()}"


def streamer_prefix(place_id: str) -> str:
    return f"stream:{place_id}:"


def normalize_presenter(identity: str) -> str | None:
    """The stored form of a presenter identity, or None when it may not be a presenter.

    Wallet addresses are lowercased because LiveKit identities of in-world users are the
    lowercased address; a checksummed address would otherwise never match (reference §19.15).
    """
    if _ETH_ADDRESS.fullmatch(identity):
        return identity.lower()
    if _STREAMER.fullmatch(identity):
        return identity
    return None
