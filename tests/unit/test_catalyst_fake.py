"""EIP-1654 signed fetch: HttpxCatalystValidator against the local fake catalyst.

The fake is the same loopback server as the place directory's (test_places_decentraland), with
its `/lambdas/crypto/validate-signature` route. Asserts the reference-behavior §9.3 mapping:
valid and owner matches → ok; invalid or another owner → 401 `Invalid signature`; network
failure, non-2xx and bad JSON/shape → 503 with the reference's messages.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cast_core.signed_fetch import (
    HttpxCatalystValidator,
    SignedFetchError,
    SignedRequest,
    build_payload,
    verify_signed_fetch,
)
from tests.support.fake_upstreams import FakeUpstreams

OWNER = "0x" + "1f" * 20
OWNER_CHECKSUMMED = "0x" + "1F" * 20
OTHER = "0x" + "2e" * 20
NOW_MS = 1_750_000_000_000
PATH = "/cast/generate-stream-link"
METADATA = json.dumps(
    {
        "signer": "decentraland-kernel-scene",
        "sceneId": "bafyScene",
        "parcel": "10,20",
        "realm": {"hostname": "peer.decentraland.org", "protocol": "v3", "serverName": "main"},
    }
)
PAYLOAD = build_payload("GET", PATH, str(NOW_MS), METADATA)

EIP1654_CHAIN: list[dict[str, str]] = [
    {"type": "SIGNER", "payload": OWNER_CHECKSUMMED, "signature": ""},
    {
        "type": "ECDSA_EIP_1654_EPHEMERAL",
        "payload": "Decentraland Login\nEphemeral address: 0x"
        + "3d" * 20
        + "\nExpiration: 2099-01-01T00:00:00.000Z",
        "signature": "0x" + "ab" * 65,
    },
    {"type": "ECDSA_EIP_1654_SIGNED_ENTITY", "payload": PAYLOAD, "signature": "0x" + "cd" * 65},
]


def headers_for(chain: list[dict[str, str]]) -> dict[str, str]:
    headers = {f"x-identity-auth-chain-{i}": json.dumps(link) for i, link in enumerate(chain)}
    headers["x-identity-timestamp"] = str(NOW_MS)
    headers["x-identity-metadata"] = METADATA
    return headers


def catalyst_says(body: Any) -> tuple[int, bytes]:
    return 200, json.dumps(body).encode()


@pytest.fixture
def catalyst(fake_server: FakeUpstreams) -> FakeUpstreams:
    fake_server.reset()
    return fake_server


@pytest.fixture
async def validator(catalyst: FakeUpstreams) -> AsyncIterator[HttpxCatalystValidator]:
    v = HttpxCatalystValidator(catalyst.base, timeout=5.0)
    yield v
    await v.aclose()


async def verify(validator: HttpxCatalystValidator, chain: list[dict[str, str]]) -> SignedRequest:
    return await verify_signed_fetch(
        method="GET",
        path=PATH,
        headers=headers_for(chain),
        now_ms=NOW_MS,
        metadata_validator=None,
        catalyst=validator,
    )


async def test_valid_chain_of_the_owner(
    catalyst: FakeUpstreams, validator: HttpxCatalystValidator
) -> None:
    catalyst.catalyst = catalyst_says({"valid": True, "ownerAddress": OWNER_CHECKSUMMED})
    signed = await verify(validator, EIP1654_CHAIN)
    assert signed.signer == OWNER
    assert signed.metadata["sceneId"] == "bafyScene"
    [seen] = catalyst.requests
    assert (seen.method, seen.path) == ("POST", "/lambdas/crypto/validate-signature")
    # The signed payload travels in the field named `timestamp` (catalyst API).
    assert json.loads(seen.body) == {"authChain": EIP1654_CHAIN, "timestamp": PAYLOAD}


async def test_validate_returns_the_owner_or_none(
    catalyst: FakeUpstreams, validator: HttpxCatalystValidator
) -> None:
    catalyst.catalyst = catalyst_says({"valid": True, "ownerAddress": OWNER})
    assert await validator.validate(EIP1654_CHAIN, PAYLOAD) == OWNER
    catalyst.catalyst = catalyst_says({"valid": False, "ownerAddress": OWNER})
    assert await validator.validate(EIP1654_CHAIN, PAYLOAD) is None


@pytest.mark.parametrize(
    "answer",
    [
        {"valid": False, "ownerAddress": OWNER},
        {"valid": False, "ownerAddress": "", "error": "bad signature"},
        {"valid": True, "ownerAddress": OTHER},  # valid, but for someone else
    ],
)
async def test_invalid_is_401(
    catalyst: FakeUpstreams, validator: HttpxCatalystValidator, answer: dict[str, Any]
) -> None:
    catalyst.catalyst = catalyst_says(answer)
    with pytest.raises(SignedFetchError) as err:
        await verify(validator, EIP1654_CHAIN)
    assert (err.value.status, err.value.message) == (401, "Invalid signature")


@pytest.mark.parametrize("status", [500, 502, 404])
async def test_non_2xx_is_503(
    catalyst: FakeUpstreams, validator: HttpxCatalystValidator, status: int
) -> None:
    catalyst.catalyst = (status, b'{"error": "boom"}')
    with pytest.raises(SignedFetchError) as err:
        await verify(validator, EIP1654_CHAIN)
    assert err.value.status == 503
    assert err.value.message == f'Catalyst "{catalyst.base}" returned HTTP {status}'


@pytest.mark.parametrize(
    "body", [b"<html>not json</html>", b"null", b"42", b'{"valid": true}', b'{"valid": "yes"}']
)
async def test_bad_json_or_shape_is_503(
    catalyst: FakeUpstreams, validator: HttpxCatalystValidator, body: bytes
) -> None:
    catalyst.catalyst = (200, body)
    with pytest.raises(SignedFetchError) as err:
        await verify(validator, EIP1654_CHAIN)
    assert err.value.status == 503
    assert err.value.message.startswith(f'Invalid response from catalyst "{catalyst.base}": ')


async def test_unreachable_catalyst_is_503(catalyst: FakeUpstreams) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there now
    v = HttpxCatalystValidator(origin, timeout=5.0)
    try:
        with pytest.raises(SignedFetchError) as err:
            await verify(v, EIP1654_CHAIN)
    finally:
        await v.aclose()
    assert err.value.status == 503
    assert err.value.message.startswith(f'Error connecting to catalyst "{origin}": ')


async def test_only_the_origin_of_the_catalyst_url_is_used(catalyst: FakeUpstreams) -> None:
    catalyst.catalyst = catalyst_says({"valid": True, "ownerAddress": OWNER})
    async with httpx.AsyncClient() as client:
        v = HttpxCatalystValidator(f"{catalyst.base}/some/prefix/", client=client)
        assert await v.validate(EIP1654_CHAIN, PAYLOAD) == OWNER
    assert catalyst.requests[0].path == "/lambdas/crypto/validate-signature"


async def test_personal_chains_never_reach_the_catalyst(
    catalyst: FakeUpstreams, validator: HttpxCatalystValidator
) -> None:
    personal = [
        {"type": "SIGNER", "payload": OWNER, "signature": ""},
        {"type": "ECDSA_SIGNED_ENTITY", "payload": PAYLOAD, "signature": "0x" + "cd" * 65},
    ]
    with pytest.raises(SignedFetchError) as err:
        await verify(validator, personal)
    assert err.value.status == 401
    assert err.value.message.startswith("Invalid signature: ")
    assert catalyst.requests == []
