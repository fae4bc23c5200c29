"""Streaming keys: derived from a StreamLink, never stored.

key = <link name without "sl-"> "." base64url(HMAC-SHA256(signing key, name + uid))

The API parses the link name out of the key, finds the link and recomputes the MAC. Because the
uid is part of the MAC, a link deleted and re-created under the same name gets a new key.
Several signing keys may be configured: the first signs, all verify (rotation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence

LINK_NAME_PREFIX = "sl-"
# <12 hex of the place hash>-<sequence>; see links.link_name
_KEY_ID = re.compile(r"^[0-9a-f]{12}-[1-9][0-9]{0,8}$")
_MAC = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_KEY_LENGTH = 80


class SigningKeys:
    """The configured HMAC keys; repr never shows them."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one link signing key is required")
        if any(len(k) < 32 for k in keys):
            raise ValueError("link signing keys must be at least 32 bytes long")
        self._keys = tuple(keys)

    @classmethod
    def from_setting(cls, value: str) -> SigningKeys:
        """Comma-separated keys, first one signs."""
        return cls([k.strip().encode() for k in value.split(",") if k.strip()])

    def __repr__(self) -> str:
        return f"SigningKeys(<{len(self._keys)} keys>)"

    def _mac(self, key: bytes, name: str, uid: str) -> str:
        digest = hmac.new(key, f"{name}{uid}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def streaming_key(self, name: str, uid: str) -> str:
        if not name.startswith(LINK_NAME_PREFIX):
            raise ValueError("not a StreamLink name")
        return f"{name[len(LINK_NAME_PREFIX) :]}.{self._mac(self._keys[0], name, uid)}"

    def verify(self, key: str, name: str, uid: str) -> bool:
        _, _, mac = key.partition(".")
        ok = False
        for signing_key in self._keys:
            # Check every key so timing does not tell which one matched.
            ok |= hmac.compare_digest(mac, self._mac(signing_key, name, uid))
        return ok


def link_name_from_key(key: str) -> str | None:
    """The StreamLink name a well-formed key refers to, or None for anything malformed."""
    if len(key) > MAX_KEY_LENGTH:
        return None
    key_id, dot, mac = key.partition(".")
    if not dot or not _KEY_ID.fullmatch(key_id) or not _MAC.fullmatch(mac):
        return None
    return f"{LINK_NAME_PREFIX}{key_id}"
