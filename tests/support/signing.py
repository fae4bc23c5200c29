"""Signed-fetch chains as the Explorer builds them, with real eth-account signatures."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

KERNEL_SCENE = "decentraland-kernel-scene"


def personal_sign(account: LocalAccount, text: str) -> str:
    signed = account.sign_message(encode_defunct(text=text))
    return "0x" + signed.signature.hex().removeprefix("0x")


@dataclass
class Identity:
    owner: LocalAccount = field(default_factory=Account.create)
    ephemeral: LocalAccount = field(default_factory=Account.create)
    expiration: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(days=60))

    @property
    def address(self) -> str:
        return str(self.owner.address)

    def ephemeral_message(self) -> str:
        iso = self.expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return f"Decentraland Login\nEphemeral address: {self.ephemeral.address}\nExpiration: {iso}"

    def chain(self, payload: str, *, with_ephemeral: bool = True) -> list[dict[str, str]]:
        signer = {"type": "SIGNER", "payload": self.address, "signature": ""}
        if not with_ephemeral:
            return [
                signer,
                {
                    "type": "ECDSA_SIGNED_ENTITY",
                    "payload": payload,
                    "signature": personal_sign(self.owner, payload),
                },
            ]
        message = self.ephemeral_message()
        return [
            signer,
            {
                "type": "ECDSA_EPHEMERAL",
                "payload": message,
                "signature": personal_sign(self.owner, message),
            },
            {
                "type": "ECDSA_SIGNED_ENTITY",
                "payload": payload,
                "signature": personal_sign(self.ephemeral, payload),
            },
        ]


def scene_metadata(
    *,
    scene_id: str = "bafytest123",
    server_name: str = "fenrir",
    hostname: str = "https://peer.decentraland.zone",
    parcel: str | None = "10,20",
    signer: str = KERNEL_SCENE,
    **extra: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "signer": signer,
        "sceneId": scene_id,
        "realm": {"serverName": server_name, "hostname": hostname, "protocol": "https"},
        "isGuest": False,
        "network": "mainnet",
        **extra,
    }
    if parcel is not None:
        metadata["parcel"] = parcel
    return metadata


def signed_headers(
    identity: Identity,
    method: str,
    path: str,
    metadata: dict[str, Any] | str,
    *,
    now: datetime,
    with_ephemeral: bool = True,
) -> dict[str, str]:
    timestamp = str(int(now.timestamp() * 1000))
    raw_metadata = metadata if isinstance(metadata, str) else json.dumps(metadata)
    payload = ":".join([method, path, timestamp, raw_metadata]).lower()
    headers = {
        f"x-identity-auth-chain-{i}": json.dumps(link)
        for i, link in enumerate(identity.chain(payload, with_ephemeral=with_ephemeral))
    }
    headers["x-identity-timestamp"] = timestamp
    headers["x-identity-metadata"] = raw_metadata
    return headers
