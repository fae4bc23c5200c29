"""Signed fetch (ADR-44) verifier: reference §9 / §18.16 vectors with real eth-account signatures.

Chains are built as the Explorer builds them: the owner key signs an ephemeral-key message
("Decentraland Login / Ephemeral address / Expiration"), the ephemeral key signs the payload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from cast_core.signed_fetch import (
    DEFAULT_CATALYST_URL,
    HttpxCatalystValidator,
    SignedFetchError,
    SignedRequest,
    _js_number_to_string,
    _js_string_to_number,
    _js_stringify,
    _parse_js_date,
    build_payload,
    is_eip1654_chain,
    verify_signed_fetch,
)

NOW = 1_718_000_000_000
HOUR = 3_600_000
PATH = "/cast/generate-stream-link"
OWNER: LocalAccount = Account.from_key("0x" + "11" * 32)
EPHEMERAL: LocalAccount = Account.from_key("0x" + "22" * 32)
OTHER: LocalAccount = Account.from_key("0x" + "33" * 32)
KERNEL_METADATA = json.dumps(
    {
        "sceneId": "bafkreiSceneID",
        "parcel": "10,20",
        "tld": "org",
        "network": "mainnet",
        "isGuest": False,
        "signer": "decentraland-kernel-scene",
        "realm": {
            "hostname": "peer.decentraland.org",
            "protocol": "v3",
            "serverName": "main",
        },
    },
    separators=(",", ":"),
)


def kernel_scene(metadata: dict[str, Any]) -> bool:
    return metadata.get("signer") == "decentraland-kernel-scene"


# --------------------------------------------------------------------------------------------
# Chain builders


def personal_sign(account: LocalAccount, text: str) -> str:
    signed = account.sign_message(encode_defunct(text=text))
    return "0x" + bytes(signed.signature).hex()


def iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ephemeral_message(address: str, expiration_ms: int) -> str:
    return f"Decentraland Login\nEphemeral address: {address}\nExpiration: {iso(expiration_ms)}"


def link(kind: str, payload: str, signature: str = "") -> dict[str, str]:
    return {"type": kind, "payload": payload, "signature": signature}


def make_chain(
    payload: str,
    *,
    owner: LocalAccount = OWNER,
    ephemeral: LocalAccount | None = EPHEMERAL,
    expiration_ms: int = NOW + HOUR,
    payload_signer: LocalAccount | None = None,
) -> list[dict[str, str]]:
    """[SIGNER, ECDSA_EPHEMERAL, ECDSA_SIGNED_ENTITY], or [SIGNER, ECDSA_SIGNED_ENTITY]."""
    chain = [link("SIGNER", owner.address)]
    if ephemeral is None:
        chain.append(
            link("ECDSA_SIGNED_ENTITY", payload, personal_sign(payload_signer or owner, payload))
        )
        return chain
    message = ephemeral_message(ephemeral.address, expiration_ms)
    chain.append(link("ECDSA_EPHEMERAL", message, personal_sign(owner, message)))
    chain.append(
        link("ECDSA_SIGNED_ENTITY", payload, personal_sign(payload_signer or ephemeral, payload))
    )
    return chain


def chain_headers(chain: list[dict[str, str]]) -> dict[str, str]:
    return {
        f"x-identity-auth-chain-{index}": json.dumps(item, separators=(",", ":"))
        for index, item in enumerate(chain)
    }


def signed_headers(
    *,
    method: str = "GET",
    path: str = PATH,
    timestamp: str | None = str(NOW),
    metadata: str | None = KERNEL_METADATA,
    **chain_options: Any,
) -> dict[str, str]:
    payload = build_payload(method, path, timestamp, metadata)
    headers = chain_headers(make_chain(payload, **chain_options))
    if timestamp is not None:
        headers["x-identity-timestamp"] = timestamp
    if metadata is not None:
        headers["x-identity-metadata"] = metadata
    return headers


def links_of(headers: Mapping[str, str]) -> list[dict[str, str]]:
    chain = []
    index = 0
    while f"x-identity-auth-chain-{index}" in headers:
        chain.append(json.loads(headers[f"x-identity-auth-chain-{index}"]))
        index += 1
    return chain


def with_chain(headers: Mapping[str, str], chain: list[dict[str, str]]) -> dict[str, str]:
    rest = {k: v for k, v in headers.items() if not k.startswith("x-identity-auth-chain-")}
    return {**rest, **chain_headers(chain)}


def flip_byte(signature: str, index: int) -> str:
    raw = bytearray(bytes.fromhex(signature[2:]))
    raw[index] ^= 0x01
    return "0x" + raw.hex()


def recovered(text: str, signature: str) -> str:
    address: str = Account.recover_message(encode_defunct(text=text), signature=signature)
    return address.lower()


async def verify(
    headers: Mapping[str, str],
    *,
    method: str = "GET",
    path: str = PATH,
    now: int = NOW,
    validator: Callable[[dict[str, Any]], bool] | None = kernel_scene,
    catalyst: Any = None,
) -> SignedRequest:
    return await verify_signed_fetch(
        method=method,
        path=path,
        headers=headers,
        now_ms=now,
        metadata_validator=validator,
        catalyst=catalyst,
    )


_SIGNATURE_IN_LINK = re.compile(r'"signature"\s*:\s*"0x([0-9a-fA-F]{16,})"')


async def rejected(headers: Mapping[str, str], **options: Any) -> SignedFetchError:
    with pytest.raises(SignedFetchError) as caught:
        await verify(headers, **options)
    error = caught.value
    assert error.message == str(error)
    # Never echo a signature.
    for name, value in headers.items():
        if name.startswith("x-identity-auth-chain-"):
            for signature in _SIGNATURE_IN_LINK.findall(value):
                assert signature.lower() not in error.message.lower()
    return error


def final_authority(expected: str, current: str) -> str:
    return (
        f"Invalid signature: ERROR: Invalid final authority. Expected: {expected}. "
        f"Current {current}."
    )


# --------------------------------------------------------------------------------------------
# Payload


def test_build_payload_vectors() -> None:
    assert build_payload("GET", "/Path", "123", "{}") == "get:/path:123:{}"
    assert build_payload("get", "/p", None, "{}") == "get:/p::{}"
    assert build_payload("POST", "/A%3Ab", None, None) == "post:/a%3ab::"


def test_coincurve_backend_is_used() -> None:
    # eth-keys picks coincurve when installed; the pure-Python backend is ~90x slower.
    from eth_keys.backends import get_backend

    assert type(get_backend()).__name__ == "CoinCurveECCBackend"
    assert type(Account._keys.backend).__name__ == "CoinCurveECCBackend"


# --------------------------------------------------------------------------------------------
# Valid chains


async def test_valid_three_link_chain() -> None:
    result = await verify(signed_headers())
    assert result == SignedRequest(
        signer=OWNER.address.lower(), metadata=json.loads(KERNEL_METADATA)
    )


async def test_valid_two_link_chain() -> None:
    result = await verify(signed_headers(ephemeral=None))
    assert result.signer == OWNER.address.lower()
    assert result.metadata["signer"] == "decentraland-kernel-scene"


async def test_valid_with_starlette_headers() -> None:
    datastructures = pytest.importorskip("starlette.datastructures")
    plain = signed_headers()
    headers = datastructures.Headers(raw=[(k.encode(), v.encode()) for k, v in plain.items()])
    assert (await verify(headers)).signer == OWNER.address.lower()


async def test_v_0_1_is_normalised() -> None:
    headers = signed_headers()
    chain = links_of(headers)
    for item in chain[1:]:
        raw = bytearray(bytes.fromhex(item["signature"][2:]))
        raw[64] -= 27
        item["signature"] = "0x" + raw.hex()
    assert (await verify(with_chain(headers, chain))).signer == OWNER.address.lower()


async def test_carriage_returns_are_removed_from_the_ephemeral_message() -> None:
    # The library verifies the ephemeral signature over the message without "\r".
    payload = build_payload("GET", PATH, str(NOW), KERNEL_METADATA)
    message = ephemeral_message(EPHEMERAL.address, NOW + HOUR)
    chain = [
        link("SIGNER", OWNER.address),
        link("ECDSA_EPHEMERAL", message.replace("\n", "\r\n"), personal_sign(OWNER, message)),
        link("ECDSA_SIGNED_ENTITY", payload, personal_sign(EPHEMERAL, payload)),
    ]
    headers = {
        **chain_headers(chain),
        "x-identity-timestamp": str(NOW),
        "x-identity-metadata": KERNEL_METADATA,
    }
    assert (await verify(headers)).signer == OWNER.address.lower()


async def test_missing_metadata_is_empty_and_signed_as_empty_segment() -> None:
    result = await verify(signed_headers(metadata=None), validator=None)
    assert result.metadata == {}


async def test_null_metadata_is_empty() -> None:
    result = await verify(signed_headers(metadata="null"), validator=None)
    assert result.metadata == {}


async def test_case_only_metadata_change_still_verifies() -> None:
    # Reference weakness §19.10: the payload is lowercased, so case is not signature-bound.
    headers = signed_headers()
    headers["x-identity-metadata"] = KERNEL_METADATA.replace("bafkreiSceneID", "BAFKREISCENEID")
    assert (await verify(headers)).metadata["sceneId"] == "BAFKREISCENEID"


async def test_window_edges_are_accepted() -> None:
    old = str(NOW - 60_000)
    assert await verify(signed_headers(timestamp=old))
    future = str(NOW + 60_000)
    assert await verify(signed_headers(timestamp=future))


# --------------------------------------------------------------------------------------------
# Mutations after signing (401)


async def test_method_changed() -> None:
    error = await rejected(signed_headers(), method="POST")
    assert error.status == 401
    assert error.message == final_authority(
        build_payload("POST", PATH, str(NOW), KERNEL_METADATA),
        build_payload("GET", PATH, str(NOW), KERNEL_METADATA),
    )


async def test_path_changed() -> None:
    error = await rejected(signed_headers(), path="/cast/presenters")
    assert error.status == 401
    assert error.message == final_authority(
        build_payload("GET", "/cast/presenters", str(NOW), KERNEL_METADATA),
        build_payload("GET", PATH, str(NOW), KERNEL_METADATA),
    )


async def test_timestamp_changed() -> None:
    headers = signed_headers()
    headers["x-identity-timestamp"] = str(NOW + 1)
    error = await rejected(headers)
    assert error.status == 401
    assert error.message == final_authority(
        build_payload("GET", PATH, str(NOW + 1), KERNEL_METADATA),
        build_payload("GET", PATH, str(NOW), KERNEL_METADATA),
    )


async def test_metadata_changed() -> None:
    headers = signed_headers()
    changed = KERNEL_METADATA.replace('"parcel":"10,20"', '"parcel":"11,20"')
    headers["x-identity-metadata"] = changed
    error = await rejected(headers)
    assert error.status == 401
    assert error.message == final_authority(
        build_payload("GET", PATH, str(NOW), changed),
        build_payload("GET", PATH, str(NOW), KERNEL_METADATA),
    )


async def test_flipped_byte_in_payload_signature() -> None:
    headers = signed_headers()
    chain = links_of(headers)
    chain[2]["signature"] = flip_byte(chain[2]["signature"], 40)
    error = await rejected(with_chain(headers, chain))
    assert error.status == 401
    actual = recovered(chain[2]["payload"], chain[2]["signature"])
    assert actual != EPHEMERAL.address.lower()
    assert error.message == (
        "Invalid signature: ERROR. Link type: ECDSA_SIGNED_ENTITY. Invalid signer address. "
        f"Expected: {EPHEMERAL.address.lower()}. Actual: {actual}."
    )


async def test_flipped_byte_in_ephemeral_signature() -> None:
    headers = signed_headers()
    chain = links_of(headers)
    chain[1]["signature"] = flip_byte(chain[1]["signature"], 50)
    error = await rejected(with_chain(headers, chain))
    actual = recovered(chain[1]["payload"], chain[1]["signature"])
    assert error.message == (
        "Invalid signature: ERROR. Link type: ECDSA_EPHEMERAL. Invalid signer address. "
        f"Expected: {OWNER.address.lower()}. Actual: {actual}."
    )


async def test_expired_ephemeral_key() -> None:
    for expiration in (NOW - 1, NOW):
        error = await rejected(signed_headers(expiration_ms=expiration))
        assert error.status == 401
        assert error.message == (
            "Invalid signature: ERROR. Link type: ECDSA_EPHEMERAL. Ephemeral key expired. "
            f"Expiration: {expiration}. Test: {NOW}."
        )


async def test_wrong_signer_direct() -> None:
    error = await rejected(signed_headers(ephemeral=None, payload_signer=OTHER))
    assert error.status == 401
    assert error.message == (
        "Invalid signature: ERROR. Link type: ECDSA_SIGNED_ENTITY. Invalid signer address. "
        f"Expected: {OWNER.address.lower()}. Actual: {OTHER.address.lower()}."
    )


async def test_wrong_signer_claims_someone_elses_address() -> None:
    headers = signed_headers(owner=OTHER)
    chain = links_of(headers)
    chain[0]["payload"] = OWNER.address  # claim to be OWNER, ephemeral was signed by OTHER
    error = await rejected(with_chain(headers, chain))
    assert error.message == (
        "Invalid signature: ERROR. Link type: ECDSA_EPHEMERAL. Invalid signer address. "
        f"Expected: {OWNER.address.lower()}. Actual: {OTHER.address.lower()}."
    )


async def test_ephemeral_key_not_the_payload_signer() -> None:
    error = await rejected(signed_headers(payload_signer=OTHER))
    assert error.message == (
        "Invalid signature: ERROR. Link type: ECDSA_SIGNED_ENTITY. Invalid signer address. "
        f"Expected: {EPHEMERAL.address.lower()}. Actual: {OTHER.address.lower()}."
    )


async def test_signer_not_first() -> None:
    headers = signed_headers()
    chain = links_of(headers)
    chain[0], chain[1] = chain[1], chain[0]
    error = await rejected(with_chain(headers, chain))
    assert (error.status, error.message) == (401, "Invalid signature: ERROR: Malformed authChain")


async def test_second_signer_link() -> None:
    headers = signed_headers()
    chain = [*links_of(headers), link("SIGNER", OTHER.address)]
    error = await rejected(with_chain(headers, chain))
    assert (error.status, error.message) == (401, "Invalid signature: ERROR: Malformed authChain")


async def test_unknown_link_type_gives_no_authority() -> None:
    headers = signed_headers()
    chain = links_of(headers)
    chain[2]["type"] = "SOMETHING_ELSE"
    error = await rejected(with_chain(headers, chain))
    payload = build_payload("GET", PATH, str(NOW), KERNEL_METADATA)
    assert error.message == final_authority(payload, "")


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (
            "",
            "Invalid AuthLink. 'signature' must be present for type "
            "'ECDSA_SIGNED_ENTITY_VALIDATOR'",
        ),
        ("abcdef", "String signatures must be encoded in hex"),
        ("0Xabcdef", "String signatures must be encoded in hex"),
        ("0x" + "ab" * 64, "Invalid ethereum signature"),
        ("0x" + "ab" * 64 + "1d", "Invalid signature recovery value: 29. Expected 27 or 28."),
        ("0x" + "00" * 64 + "1b", "Could not recover the signer address"),
        ("0x" + "ff" * 64 + "1b", "Could not recover the signer address"),
    ],
)
async def test_bad_payload_signatures(signature: str, reason: str) -> None:
    headers = signed_headers()
    chain = links_of(headers)
    chain[2]["signature"] = signature
    error = await rejected(with_chain(headers, chain))
    assert error.status == 401
    assert error.message == f"Invalid signature: ERROR. Link type: ECDSA_SIGNED_ENTITY. {reason}."


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            "Decentraland Login\nEphemeral address: 0x1",
            'Invalid ephemeral payload. Expected 3 lines with "Ephemeral address: " on line 2 '
            'and "Expiration: " on line 3.',
        ),
        (
            "Decentraland Login\nAddress: 0x1\nExpiration: 2030-01-01T00:00:00.000Z",
            'Invalid ephemeral payload. Expected 3 lines with "Ephemeral address: " on line 2 '
            'and "Expiration: " on line 3.',
        ),
        (
            "Decentraland Login\nEphemeral address: 0x1\nExpiration: tomorrow",
            'Invalid expiration date in ephemeral payload: "tomorrow"',
        ),
    ],
)
async def test_bad_ephemeral_payloads(payload: str, reason: str) -> None:
    headers = signed_headers()
    chain = links_of(headers)
    chain[1] = link("ECDSA_EPHEMERAL", payload, personal_sign(OWNER, payload))
    error = await rejected(with_chain(headers, chain))
    assert error.message == f"Invalid signature: ERROR. Link type: ECDSA_EPHEMERAL. {reason}."


# --------------------------------------------------------------------------------------------
# Chain extraction (400)


async def test_no_headers() -> None:
    error = await rejected({})
    assert (error.status, error.message) == (400, "Invalid Auth Chain")


async def test_single_link() -> None:
    headers = signed_headers()
    headers = {k: v for k, v in headers.items() if not k.endswith("-1") and not k.endswith("-2")}
    error = await rejected(headers)
    assert (error.status, error.message) == (400, "Invalid Auth Chain")


async def test_gap_stops_the_chain() -> None:
    headers = signed_headers()
    del headers["x-identity-auth-chain-1"]
    error = await rejected(headers)
    assert (error.status, error.message) == (400, "Invalid Auth Chain")


async def test_eleven_links() -> None:
    headers = signed_headers()
    chain = links_of(headers)
    chain += [chain[2]] * 8
    assert len(chain) == 11
    error = await rejected(with_chain(headers, chain))
    assert (error.status, error.message) == (400, "Auth chain exceeds maximum length of 10")


async def test_ten_links_pass_extraction() -> None:
    headers = signed_headers()
    chain = links_of(headers)
    chain += [chain[2]] * 7
    error = await rejected(with_chain(headers, chain))
    assert error.status == 401


async def test_non_json_link() -> None:
    headers = signed_headers()
    headers["x-identity-auth-chain-1"] = headers["x-identity-auth-chain-1"][:-5]
    error = await rejected(headers)
    assert error.status == 400
    assert error.message.startswith("Invalid chain format: ")
    assert "malformed" not in error.message


@pytest.mark.parametrize(
    "raw",
    [
        "null",
        "42",
        '"text"',
        "[]",
        '{"type":"ECDSA_SIGNED_ENTITY","payload":"p"}',
        '{"type":"ECDSA_SIGNED_ENTITY","payload":"p","signature":1}',
        '{"type":null,"payload":"p","signature":"0x"}',
    ],
)
async def test_malformed_link_shape(raw: str) -> None:
    headers = signed_headers()
    headers["x-identity-auth-chain-1"] = raw
    error = await rejected(headers)
    assert (error.status, error.message) == (
        400,
        "Invalid chain format: malformed auth link at position 1",
    )


async def test_gatekeeper_extra_signer_link_without_signature() -> None:
    # Reference gatekeeper test: {type: "SIGNER", payload: "invalid-signature"} appended → 400.
    headers = signed_headers()
    headers["x-identity-auth-chain-3"] = json.dumps(
        {"type": "SIGNER", "payload": "invalid-signature"}
    )
    error = await rejected(headers)
    assert (error.status, error.message) == (
        400,
        "Invalid chain format: malformed auth link at position 3",
    )


async def test_oversized_link() -> None:
    headers = signed_headers()
    chain = links_of(headers)
    chain[1]["payload"] += "x" * 9000
    error = await rejected(with_chain(headers, chain))
    assert (error.status, error.message) == (
        400,
        "Invalid chain format: auth link at position 1 exceeds 8192 bytes",
    )


async def test_nan_literal_in_link_is_not_json() -> None:
    headers = signed_headers()
    headers["x-identity-auth-chain-1"] = '{"type":"x","payload":"p","signature":"s","n":NaN}'
    error = await rejected(headers)
    assert error.status == 400
    assert error.message.startswith("Invalid chain format: ")


async def test_repeated_link_header_is_invalid() -> None:
    datastructures = pytest.importorskip("starlette.datastructures")
    plain = signed_headers()
    raw = [(k.encode(), v.encode()) for k, v in plain.items()]
    raw.append((b"x-identity-auth-chain-1", plain["x-identity-auth-chain-1"].encode()))
    error = await rejected(datastructures.Headers(raw=raw))
    assert error.status == 400
    assert error.message.startswith("Invalid chain format: ")


# --------------------------------------------------------------------------------------------
# Timestamp (400 syntax, 401 window)


async def test_timestamp_too_old() -> None:
    timestamp = NOW - 60_001
    error = await rejected(signed_headers(timestamp=str(timestamp)))
    assert (error.status, error.message) == (
        401,
        f"Expired signature: signature timestamp: {timestamp}, "
        f"timestamp expiration: {timestamp + 60_000}, local timestamp: {NOW}",
    )


async def test_timestamp_too_far_in_the_future() -> None:
    timestamp = NOW + 60_001
    error = await rejected(signed_headers(timestamp=str(timestamp)))
    assert (error.status, error.message) == (
        401,
        "Signature timestamp is too far in the future: "
        f"signature timestamp: {timestamp}, local timestamp: {NOW}",
    )


async def test_timestamp_zero_exact_message() -> None:
    error = await rejected(signed_headers(timestamp="0"))
    assert (error.status, error.message) == (
        401,
        f"Expired signature: signature timestamp: 0, timestamp expiration: 60000, "
        f"local timestamp: {NOW}",
    )


async def test_missing_timestamp_is_zero() -> None:
    error = await rejected(signed_headers(timestamp=None))
    assert error.message == (
        f"Expired signature: signature timestamp: 0, timestamp expiration: 60000, "
        f"local timestamp: {NOW}"
    )


async def test_non_numeric_timestamp() -> None:
    headers = signed_headers()
    headers["x-identity-timestamp"] = "abc"
    error = await rejected(headers)
    assert (error.status, error.message) == (400, "Invalid chain timestamp: abc")


async def test_long_non_numeric_timestamp_is_truncated() -> None:
    headers = signed_headers()
    headers["x-identity-timestamp"] = "z" * 200
    error = await rejected(headers)
    assert error.message == "Invalid chain timestamp: " + "z" * 64 + "…"


async def test_repeated_timestamp_header_is_invalid() -> None:
    datastructures = pytest.importorskip("starlette.datastructures")
    plain = signed_headers()
    raw = [(k.encode(), v.encode()) for k, v in plain.items()]
    raw.append((b"x-identity-timestamp", str(NOW).encode()))
    error = await rejected(datastructures.Headers(raw=raw))
    assert (error.status, error.message) == (400, f"Invalid chain timestamp: {NOW}, {NOW}")


async def test_js_number_forms_are_accepted_as_timestamps() -> None:
    # Number() accepts these; the signed payload still uses the raw header text.
    for raw in (f" {NOW} ", f"{NOW}.0", f"{NOW / 1000}e3", hex(NOW)):
        assert (await verify(signed_headers(timestamp=raw))).signer == OWNER.address.lower()


# --------------------------------------------------------------------------------------------
# Metadata (400)


@pytest.mark.parametrize("raw", ["{", "42", "[1,2]", '"x"', "true", "", "NaN", '{"a":NaN}'])
async def test_invalid_metadata(raw: str) -> None:
    headers = signed_headers()
    headers["x-identity-metadata"] = raw
    error = await rejected(headers)
    assert (error.status, error.message) == (400, f'Invalid chain metadata: "{raw}"')


async def test_oversized_metadata() -> None:
    # (A signed oversized metadata would already make the last link too large.)
    raw = json.dumps({"signer": "decentraland-kernel-scene", "pad": "x" * 9000})
    headers = signed_headers()
    headers["x-identity-metadata"] = raw
    error = await rejected(headers)
    assert (error.status, error.message) == (400, f'Invalid chain metadata: "{raw[:64]}…"')


async def test_deeply_nested_metadata() -> None:
    raw = '{"a":' + "[" * 2000 + "]" * 2000 + "}"
    error = await rejected(signed_headers(metadata='{"a":' + "[" * 100 + "]" * 100 + "}"))
    assert error.status == 400
    assert error.message.startswith('Invalid chain metadata: "{"a":[[[')
    error = await rejected(signed_headers(metadata=raw))
    assert error.status == 400


async def test_metadata_validator_false() -> None:
    raw = '{"signer":"dcl:explorer","b":1.0,"1":true,"big":1e21,"u":"\\u00e9\\ud800"}'
    error = await rejected(signed_headers(metadata=raw))
    assert (error.status, error.message) == (
        400,
        'Invalid metadata content: {"1":true,"signer":"dcl:explorer","b":1,"big":1e+21,'
        '"u":"é\\ud800"}',
    )


async def test_metadata_validator_that_raises_propagates() -> None:
    def boom(metadata: dict[str, Any]) -> bool:
        raise RuntimeError("validator failed")

    with pytest.raises(RuntimeError, match="validator failed"):
        await verify(signed_headers(), validator=boom)


# --------------------------------------------------------------------------------------------
# Order of checks


async def test_chain_is_checked_before_timestamp() -> None:
    error = await rejected({"x-identity-timestamp": "abc"})
    assert error.message == "Invalid Auth Chain"


async def test_window_is_checked_before_metadata_and_validator() -> None:
    headers = signed_headers(timestamp="0", metadata="[1]")
    error = await rejected(headers)
    assert error.status == 401
    assert error.message.startswith("Expired signature:")


async def test_validator_runs_before_signatures() -> None:
    headers = signed_headers(ephemeral=None, payload_signer=OTHER, metadata="{}")
    error = await rejected(headers)
    assert (error.status, error.message) == (400, "Invalid metadata content: {}")


# --------------------------------------------------------------------------------------------
# EIP-1654 (contract wallets) through the catalyst


def eip1654_headers() -> tuple[dict[str, str], str]:
    payload = build_payload("GET", PATH, str(NOW), KERNEL_METADATA)
    message = ephemeral_message(EPHEMERAL.address, NOW + HOUR)
    chain = [
        link("SIGNER", OWNER.address),
        link("ECDSA_EIP_1654_EPHEMERAL", message, "0x" + "12" * 70),
        link("ECDSA_EIP_1654_SIGNED_ENTITY", payload, "0x" + "34" * 70),
    ]
    headers = {
        **chain_headers(chain),
        "x-identity-timestamp": str(NOW),
        "x-identity-metadata": KERNEL_METADATA,
    }
    return headers, payload


@dataclass
class FakeCatalyst:
    answer: str | None = None
    error: SignedFetchError | None = None
    calls: list[tuple[list[dict[str, Any]], str]] = field(default_factory=list)

    async def validate(self, chain: list[dict[str, Any]], payload: str) -> str | None:
        self.calls.append((chain, payload))
        if self.error is not None:
            raise self.error
        return self.answer


def test_eip1654_detection() -> None:
    headers, _ = eip1654_headers()
    chain = links_of(headers)
    assert is_eip1654_chain(chain)
    assert is_eip1654_chain(chain[:2])
    assert not is_eip1654_chain(links_of(signed_headers()))
    assert not is_eip1654_chain([])
    assert not is_eip1654_chain([*chain, chain[2]])


async def test_eip1654_valid() -> None:
    headers, payload = eip1654_headers()
    catalyst = FakeCatalyst(answer=OWNER.address.upper().replace("0X", "0x"))
    result = await verify(headers, catalyst=catalyst)
    assert result.signer == OWNER.address.lower()
    assert catalyst.calls == [(links_of(headers), payload)]


@pytest.mark.parametrize("answer", [None, OTHER.address])
async def test_eip1654_invalid(answer: str | None) -> None:
    headers, _ = eip1654_headers()
    error = await rejected(headers, catalyst=FakeCatalyst(answer=answer))
    assert (error.status, error.message) == (401, "Invalid signature")


async def test_eip1654_catalyst_unavailable() -> None:
    headers, _ = eip1654_headers()
    failure = SignedFetchError(503, 'Catalyst "https://peer.decentraland.org" returned HTTP 502')
    error = await rejected(headers, catalyst=FakeCatalyst(error=failure))
    assert error is failure


async def test_eip1654_without_catalyst_fails_locally() -> None:
    headers, _ = eip1654_headers()
    error = await rejected(headers, catalyst=None)
    assert (error.status, error.message) == (
        401,
        "Invalid signature: ERROR. Link type: ECDSA_EIP_1654_EPHEMERAL. Missing provider.",
    )


async def test_eip1654_expired_timestamp_skips_catalyst() -> None:
    headers, _ = eip1654_headers()
    catalyst = FakeCatalyst(answer=OWNER.address)
    error = await rejected(headers, catalyst=catalyst, now=NOW + 120_000)
    assert error.status == 401
    assert catalyst.calls == []


async def test_personal_chain_never_calls_catalyst() -> None:
    catalyst = FakeCatalyst(answer=OTHER.address)
    assert (await verify(signed_headers(), catalyst=catalyst)).signer == OWNER.address.lower()
    assert catalyst.calls == []


async def test_eip1654_signed_entity_in_personal_path() -> None:
    # Not detected as EIP-1654 (link 1 is a personal ephemeral) → needs a provider → fails.
    headers = signed_headers()
    chain = links_of(headers)
    chain[2]["type"] = "ECDSA_EIP_1654_SIGNED_ENTITY"
    error = await rejected(with_chain(headers, chain), catalyst=FakeCatalyst(answer=OWNER.address))
    assert error.message == (
        "Invalid signature: ERROR. Link type: ECDSA_EIP_1654_SIGNED_ENTITY. Missing provider."
    )


# HttpxCatalystValidator against an httpx MockTransport

ORIGIN = "https://peer.decentraland.org"


def catalyst_with(handler: Callable[[httpx.Request], httpx.Response]) -> HttpxCatalystValidator:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpxCatalystValidator(DEFAULT_CATALYST_URL, timeout=1.0, client=client)


async def test_httpx_catalyst_request_and_valid_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"valid": True, "ownerAddress": OWNER.address})

    chain = [link("SIGNER", OWNER.address), link("ECDSA_EIP_1654_EPHEMERAL", "m", "0x12")]
    owner = await catalyst_with(handler).validate(chain, "get:/p:1:{}")
    assert owner == OWNER.address
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"{ORIGIN}/lambdas/crypto/validate-signature"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"authChain": chain, "timestamp": "get:/p:1:{}"}


async def test_httpx_catalyst_invalid_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"valid": False, "ownerAddress": OWNER.address})

    assert await catalyst_with(handler).validate([], "p") is None


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError("connection refused"), httpx.ReadTimeout("timed out")]
)
async def test_httpx_catalyst_unreachable(failure: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(SignedFetchError) as caught:
        await catalyst_with(handler).validate([], "p")
    assert caught.value.status == 503
    assert caught.value.message == f'Error connecting to catalyst "{ORIGIN}": {failure}'


@pytest.mark.parametrize("status", [400, 404, 500, 502])
async def test_httpx_catalyst_non_2xx(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"valid": True, "ownerAddress": OWNER.address})

    with pytest.raises(SignedFetchError) as caught:
        await catalyst_with(handler).validate([], "p")
    assert (caught.value.status, caught.value.message) == (
        503,
        f'Catalyst "{ORIGIN}" returned HTTP {status}',
    )


@pytest.mark.parametrize(
    ("body", "shape"),
    [
        (b"<html>", False),
        (b"", False),
        (b"null", True),
        (b"42", True),
        (b"[]", True),
        (b'{"valid":true}', True),
        (b'{"ownerAddress":"0x1"}', True),
        (b'{"valid":"true","ownerAddress":"0x1"}', True),
        (b'{"valid":true,"ownerAddress":1}', True),
        (b'{"valid":true,"ownerAddress":"' + b"a" * 70_000 + b'"}', False),
    ],
)
async def test_httpx_catalyst_bad_response(body: bytes, shape: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    with pytest.raises(SignedFetchError) as caught:
        await catalyst_with(handler).validate([], "p")
    assert caught.value.status == 503
    assert caught.value.message.startswith(f'Invalid response from catalyst "{ORIGIN}": ')
    assert caught.value.message.endswith("unexpected response shape") == shape


async def test_httpx_catalyst_end_to_end() -> None:
    headers, payload = eip1654_headers()

    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        valid = sent["timestamp"] == payload and sent["authChain"] == links_of(headers)
        return httpx.Response(200, json={"valid": valid, "ownerAddress": OWNER.address.lower()})

    result = await verify(headers, catalyst=catalyst_with(handler))
    assert result.signer == OWNER.address.lower()
    error = await rejected(headers, catalyst=catalyst_with(handler), path="/other")
    assert (error.status, error.message) == (401, "Invalid signature")


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://peer.decentraland.org", "https://peer.decentraland.org"),
        ("https://Peer.Decentraland.org/some/path/?q=1", "https://peer.decentraland.org"),
        ("https://catalyst.example:443/", "https://catalyst.example"),
        ("http://localhost:8080/lambdas", "http://localhost:8080"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_catalyst_origin(url: str, origin: str) -> None:
    assert HttpxCatalystValidator(url).origin == origin


@pytest.mark.parametrize("url", ["peer.decentraland.org", "ftp://x", "https://"])
def test_catalyst_url_must_be_http(url: str) -> None:
    with pytest.raises(ValueError, match="catalyst URL"):
        HttpxCatalystValidator(url)


# --------------------------------------------------------------------------------------------
# JavaScript semantics the reference depends on (values checked against node 20)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("  12 ", 12.0),
        ("0x10", 16.0),
        ("0X1F", 31.0),
        ("0b11", 3.0),
        ("0o17", 15.0),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("+.5e1", 5.0),
        ("\xa012\xa0", 12.0),
        ("12\t\n", 12.0),
        ("", 0.0),
        ("00012", 12.0),
        ("Infinity", float("inf")),
        ("-Infinity", float("-inf")),
    ],
)
def test_js_number(text: str, value: float) -> None:
    assert _js_string_to_number(text) == value


@pytest.mark.parametrize("text", ["-0x10", "1_0", "1e", "-", "abc", "0x", "infinity", "1,2", "١٢"])
def test_js_number_nan(text: str) -> None:
    assert _js_string_to_number(text) != _js_string_to_number(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (123.456, "123.456"),
        (2.0**53 + 2, "9007199254740994"),
        (1718000000000.0, "1718000000000"),
        (-1.25, "-1.25"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
    ],
)
def test_js_number_to_string(value: float, text: str) -> None:
    assert _js_number_to_string(value) == text


def test_js_stringify_orders_index_keys_first() -> None:
    value = {"b": 1, "1": 2, "01": 3, "4294967294": 4, "4294967295": 5, "a": "\ud800\x01\x7f\u2028"}
    assert _js_stringify(value) == (
        '{"1":2,"4294967294":4,"b":1,"01":3,"4294967295":5,"a":"\\ud800\\u0001\x7f\u2028"}'
    )


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2020-01-20T22:57:11.334Z", 1579561031334),
        ("2020-01-20T22:57:11.3Z", 1579561031300),
        ("2020-01-20T22:57:11.334567Z", 1579561031334),
        ("2020-01-20T22:57:11Z", 1579561031000),
        ("2020-01-20T22:57Z", 1579561020000),
        ("2020-01-20T22:57", 1579561020000),
        ("2020-01-20", 1579478400000),
        ("2020-01", 1577836800000),
        ("2020", 1577836800000),
        ("+002020-01-20T00:00:00Z", 1579478400000),
        ("2021-02-30T00:00:00Z", 1614643200000),
        ("2020-01-20T24:00:00Z", 1579564800000),
        ("2020-01-20T22:57:11+01:00", 1579557431000),
        ("+275760-09-13T00:00:00.000Z", 8640000000000000),
        ("2020-02-29T00:00:00Z", 1582934400000),
        ("2021-02-29T00:00:00Z", 1614556800000),
        ("2020-01-20T22:57:11.334+23:59", 1579474691334),
        ("2020-01-20T22:57:11.334-00:00", 1579561031334),
        ("-000001-01-01T00:00:00Z", -62198755200000),
    ],
)
def test_js_date_parse(text: str, ms: int) -> None:
    assert _parse_js_date(text) == ms


@pytest.mark.parametrize(
    "text",
    [
        "-000000-01-01T00:00:00Z",
        "2021-02-32T00:00:00Z",
        "2021-13-01T00:00:00Z",
        "2020-01-20T24:00:01Z",
        "2020-01-20T23:60:00Z",
        " 2020-01-20T22:57:11Z",
        "2020-01-20T22:57:11Z ",
        "2020-01-20T22:57:11.Z",
        "275760-09-13T00:00:00Z",
        "+275760-09-13T00:00:00.001Z",
        "2020-00-01",
        "2020-01-00",
        "2020-01-20T22:57:11.334+24:00",
        "tomorrow",
        "",
    ],
)
def test_js_date_parse_invalid(text: str) -> None:
    assert _parse_js_date(text) is None
