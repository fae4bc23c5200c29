"""The verifier against chains made by the real client library, `@dcl/crypto` (tests/js/sign.mjs).

One node process signs every base chain the way the Explorer does (owner → ephemeral key →
payload, or owner → payload). Each case then mutates those headers in Python and runs the
verifier. A second node process runs the library's own `Authenticator.validateSignature` (no
provider, as the reference middleware calls it) on every case that reaches signature checking,
so the verifier's verdicts and "Invalid signature: <reason>" texts are compared with the
library's, not only with expectations written here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from cast_core.signed_fetch import SignedFetchError, build_payload, verify_signed_fetch
from tests.unit.test_signed_fetch import (
    KERNEL_METADATA,
    PATH,
    flip_byte,
    kernel_scene,
    links_of,
    with_chain,
)

JS_DIR = Path(__file__).resolve().parents[1] / "js"
OWNER: LocalAccount = Account.from_key("0x" + "44" * 32)
OTHER: LocalAccount = Account.from_key("0x" + "55" * 32)
ENCODED_PATH = "/cast/presenters/stream%3APlace-1%3Aabc"

Headers = dict[str, str]
SIGNATURE_IN_LINK = re.compile(r'"signature"\s*:\s*"0x([0-9a-fA-F]{16,})"')


class Node:
    """One `node sign.mjs --lines` process for the whole session; one line per batch of jobs."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(JS_DIR / "sign.mjs"), "--lines"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.seconds = 0.0

    def run(self, jobs: list[dict[str, Any]]) -> list[Any]:
        started = time.perf_counter()
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(jobs) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"sign.mjs exited {self.process.returncode}: {stderr}")
        results: list[Any] = json.loads(line)
        assert len(results) == len(jobs)
        self.seconds += time.perf_counter() - started
        return results

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="session")
def node() -> Iterator[Node]:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm/node not installed: the @dcl/crypto vectors need Node.js")
    if not (JS_DIR / "node_modules" / "@dcl" / "crypto").is_dir():
        subprocess.run(
            ["npm", "ci", "--prefix", str(JS_DIR), "--no-audit", "--no-fund"],
            check=True,
            timeout=600,
        )
    process = Node()
    yield process
    process.close()
    print(f"\nnode sign.mjs: {process.seconds:.2f}s for all batches")


def iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# Base chains signed by node


@dataclass(frozen=True)
class Base:
    method: str = "GET"
    path: str = PATH
    metadata: str = KERNEL_METADATA
    ephemeral: bool = True
    owner: LocalAccount | None = OWNER
    expired: bool = False


BASES: dict[str, Base] = {
    "ephemeral": Base(),
    "direct": Base(ephemeral=False),
    "random_owner": Base(owner=None),
    "other": Base(owner=OTHER),
    "expired": Base(expired=True),
    "encoded_path": Base(method="PUT", path=ENCODED_PATH),
    "null_metadata": Base(metadata="null"),
    "metadata_brace": Base(metadata="{"),
    "metadata_number": Base(metadata="42"),
    "metadata_array": Base(metadata="[1,2]"),
    "explorer_signer": Base(metadata='{"signer":"dcl:explorer","b":1.0}'),
}


@dataclass(frozen=True)
class Signed:
    now: int
    headers: dict[str, Headers]


@pytest.fixture(scope="session")
def signed(node: Node) -> Signed:
    now = int(time.time() * 1000)
    jobs = []
    for base in BASES.values():
        job: dict[str, Any] = {
            "method": base.method,
            "path": base.path,
            "timestamp": now,
            "metadata": base.metadata,
            "ephemeral": base.ephemeral,
        }
        if base.owner is not None:
            job["ownerKey"] = "0x" + bytes(base.owner.key).hex()
        if base.expired:
            job["expirationISO"] = iso(now - 1000)
        jobs.append(job)
    return Signed(now, dict(zip(BASES, node.run(jobs), strict=True)))


# --------------------------------------------------------------------------------------------
# Cases: a base, a mutation, how to verify, what to expect


Mutation = Callable[[Headers, Signed], Headers]


def same(headers: Headers, _: Signed) -> Headers:
    return dict(headers)


def set_header(name: str, value: str) -> Mutation:
    return lambda headers, _: {**headers, name: value}


def with_links(change: Callable[[list[dict[str, str]], Signed], list[dict[str, str]]]) -> Mutation:
    return lambda headers, vectors: with_chain(headers, change(links_of(headers), vectors))


def flip(index: int, byte: int) -> Mutation:
    def change(chain: list[dict[str, str]], _: Signed) -> list[dict[str, str]]:
        chain[index]["signature"] = flip_byte(chain[index]["signature"], byte)
        return chain

    return with_links(change)


def v_minus_27(chain: list[dict[str, str]], _: Signed) -> list[dict[str, str]]:
    for item in chain[1:]:
        raw = bytearray(bytes.fromhex(item["signature"][2:]))
        raw[64] -= 27
        item["signature"] = "0x" + raw.hex()
    return chain


def swap_first_two(chain: list[dict[str, str]], _: Signed) -> list[dict[str, str]]:
    return [chain[1], chain[0], *chain[2:]]


def claim_other_owner(chain: list[dict[str, str]], _: Signed) -> list[dict[str, str]]:
    chain[0]["payload"] = OTHER.address
    return chain


def foreign_last_link(chain: list[dict[str, str]], vectors: Signed) -> list[dict[str, str]]:
    # Same payload, but signed by another identity's ephemeral key.
    return [*chain[:2], links_of(vectors.headers["other"])[2]]


def eleven_links(chain: list[dict[str, str]], _: Signed) -> list[dict[str, str]]:
    return chain + [chain[-1]] * (11 - len(chain))


def unknown_type(chain: list[dict[str, str]], _: Signed) -> list[dict[str, str]]:
    chain[-1]["type"] = "ECDSA_SOMETHING"
    return chain


def truncate_link(headers: Headers, _: Signed) -> Headers:
    return {**headers, "x-identity-auth-chain-1": headers["x-identity-auth-chain-1"][:-7]}


def drop_signature_field(headers: Headers, _: Signed) -> Headers:
    item = json.loads(headers["x-identity-auth-chain-1"])
    del item["signature"]
    return {**headers, "x-identity-auth-chain-1": json.dumps(item)}


def nothing(headers: Headers, _: Signed) -> Headers:
    return {}


def only_signer(headers: Headers, _: Signed) -> Headers:
    return {k: v for k, v in headers.items() if k != "x-identity-auth-chain-1"}


@dataclass(frozen=True)
class Case:
    base: str
    mutate: Mutation = same
    method: str | None = None  # default: the base's
    path: str | None = None
    now_shift: int = 0
    validator: Callable[[dict[str, Any]], bool] | None = kernel_scene
    status: int | None = None  # None: accepted
    message: str | Callable[[Headers, Signed], str] | None = None
    prefix: str | None = None  # when the exact text is not ours to fix (JSON parser wording)


def final_authority(
    expected: tuple[str, str, str], current: tuple[str, str, str]
) -> Callable[[Headers, Signed], str]:
    def message(headers: Headers, vectors: Signed) -> str:
        ts = str(vectors.now)
        return (
            "Invalid signature: ERROR: Invalid final authority. "
            f"Expected: {build_payload(*expected[:2], expected[2] or ts, KERNEL_METADATA)}. "
            f"Current {build_payload(*current[:2], current[2] or ts, KERNEL_METADATA)}."
        )

    return message


def too_old(headers: Headers, vectors: Signed) -> str:
    ts = vectors.now
    return (
        f"Expired signature: signature timestamp: {ts}, timestamp expiration: {ts + 60_000}, "
        f"local timestamp: {ts + 60_001}"
    )


def too_new(headers: Headers, vectors: Signed) -> str:
    ts = vectors.now
    return (
        "Signature timestamp is too far in the future: "
        f"signature timestamp: {ts}, local timestamp: {ts - 60_001}"
    )


CASES: dict[str, Case] = {
    "valid_ephemeral": Case("ephemeral"),
    "valid_direct": Case("direct"),
    "valid_random_owner": Case("random_owner"),
    "valid_percent_encoded_path": Case("encoded_path"),
    "valid_path_case_is_not_signed": Case("ephemeral", path=PATH.upper()),
    "valid_v_0_1": Case("direct", with_links(v_minus_27)),
    "valid_null_metadata": Case("null_metadata", validator=None),
    "valid_window_edge_old": Case("ephemeral", now_shift=60_000),
    "valid_window_edge_future": Case("ephemeral", now_shift=-60_000),
    "method_changed": Case(
        "ephemeral",
        method="POST",
        status=401,
        message=final_authority(("POST", PATH, ""), ("GET", PATH, "")),
    ),
    "path_changed": Case(
        "ephemeral",
        path="/cast/presenters",
        status=401,
        message=final_authority(("GET", "/cast/presenters", ""), ("GET", PATH, "")),
    ),
    "timestamp_changed": Case(
        "ephemeral",
        lambda headers, vectors: {**headers, "x-identity-timestamp": str(vectors.now + 1)},
        status=401,
        message=lambda headers, vectors: final_authority(
            ("GET", PATH, str(vectors.now + 1)), ("GET", PATH, "")
        )(headers, vectors),
    ),
    "metadata_changed": Case(
        "ephemeral",
        set_header(
            "x-identity-metadata", KERNEL_METADATA.replace('"parcel":"10,20"', '"parcel":"0,0"')
        ),
        status=401,
        prefix="Invalid signature: ERROR: Invalid final authority. Expected: get:",
    ),
    "flipped_payload_signature": Case(
        "ephemeral",
        flip(2, 40),
        status=401,
        prefix="Invalid signature: ERROR. Link type: ECDSA_SIGNED_ENTITY. Invalid signer address.",
    ),
    "flipped_ephemeral_signature": Case(
        "ephemeral",
        flip(1, 50),
        status=401,
        prefix="Invalid signature: ERROR. Link type: ECDSA_EPHEMERAL. Invalid signer address. "
        f"Expected: {OWNER.address.lower()}.",
    ),
    "flipped_direct_signature": Case(
        "direct",
        flip(1, 33),
        status=401,
        prefix="Invalid signature: ERROR. Link type: ECDSA_SIGNED_ENTITY. Invalid signer address. "
        f"Expected: {OWNER.address.lower()}.",
    ),
    "expired_ephemeral": Case(
        "expired",
        status=401,
        prefix="Invalid signature: ERROR. Link type: ECDSA_EPHEMERAL. Ephemeral key expired.",
    ),
    "signer_not_first": Case(
        "ephemeral",
        with_links(swap_first_two),
        status=401,
        message="Invalid signature: ERROR: Malformed authChain",
    ),
    "wrong_signer_claimed": Case(
        "ephemeral",
        with_links(claim_other_owner),
        status=401,
        prefix="Invalid signature: ERROR. Link type: ECDSA_EPHEMERAL. Invalid signer address. "
        f"Expected: {OTHER.address.lower()}. Actual: {OWNER.address.lower()}.",
    ),
    "payload_signed_by_another_ephemeral": Case(
        "ephemeral",
        with_links(foreign_last_link),
        status=401,
        prefix="Invalid signature: ERROR. Link type: ECDSA_SIGNED_ENTITY. Invalid signer address.",
    ),
    "unknown_link_type": Case(
        "ephemeral",
        with_links(unknown_type),
        status=401,
        prefix="Invalid signature: ERROR: Invalid final authority.",
    ),
    "eleven_links": Case(
        "ephemeral",
        with_links(eleven_links),
        status=400,
        message="Auth chain exceeds maximum length of 10",
    ),
    "non_json_link": Case("ephemeral", truncate_link, status=400, prefix="Invalid chain format: "),
    "malformed_link": Case(
        "ephemeral",
        drop_signature_field,
        status=400,
        message="Invalid chain format: malformed auth link at position 1",
    ),
    "timestamp_too_old": Case("ephemeral", now_shift=60_001, status=401, message=too_old),
    "timestamp_too_far_in_the_future": Case(
        "ephemeral", now_shift=-60_001, status=401, message=too_new
    ),
    "no_headers": Case("ephemeral", nothing, status=400, message="Invalid Auth Chain"),
    "single_link": Case("direct", only_signer, status=400, message="Invalid Auth Chain"),
    "metadata_brace": Case("metadata_brace", status=400, message='Invalid chain metadata: "{"'),
    "metadata_number": Case("metadata_number", status=400, message='Invalid chain metadata: "42"'),
    "metadata_array": Case("metadata_array", status=400, message='Invalid chain metadata: "[1,2]"'),
    "metadata_validator_false": Case(
        "explorer_signer",
        status=400,
        message='Invalid metadata content: {"signer":"dcl:explorer","b":1}',
    ),
}


@dataclass(frozen=True)
class Prepared:
    headers: Headers
    method: str
    path: str
    now: int
    library: dict[str, Any] | None  # Authenticator.validateSignature's answer, when reached


def reaches_signatures(case: Case) -> bool:
    return case.status is None or (case.status == 401 and case.now_shift == 0)


@pytest.fixture(scope="session")
def prepared(node: Node, signed: Signed) -> dict[str, Prepared]:
    """Every case's mutated headers, and the library's verdict on the ones that reach signatures."""
    out: dict[str, Prepared] = {}
    jobs: list[dict[str, Any]] = []
    names: list[str] = []
    for name, case in CASES.items():
        base = BASES[case.base]
        headers = case.mutate(signed.headers[case.base], signed)
        method = case.method or base.method
        path = case.path or base.path
        now = signed.now + case.now_shift
        out[name] = Prepared(headers, method, path, now, None)
        if reaches_signatures(case):
            payload = build_payload(
                method,
                path,
                headers.get("x-identity-timestamp"),
                headers.get("x-identity-metadata"),
            )
            jobs.append(
                {"op": "validate", "payload": payload, "chain": links_of(headers), "nowMs": now}
            )
            names.append(name)
    for name, verdict in zip(names, node.run(jobs), strict=True):
        out[name] = replace(out[name], library=verdict)
    return out


def signer_of(headers: Headers) -> str:
    return str(json.loads(headers["x-identity-auth-chain-0"])["payload"]).lower()


@pytest.mark.parametrize("name", list(CASES))
async def test_case(name: str, signed: Signed, prepared: dict[str, Prepared]) -> None:
    case, ready = CASES[name], prepared[name]

    async def run() -> Any:
        return await verify_signed_fetch(
            method=ready.method,
            path=ready.path,
            headers=ready.headers,
            now_ms=ready.now,
            metadata_validator=case.validator,
            catalyst=None,
        )

    if case.status is None:
        result = await run()
        assert result.signer == signer_of(ready.headers)
        assert result.metadata == (json.loads(BASES[case.base].metadata) or {})
        if case.base in ("direct", "ephemeral"):
            assert result.signer == OWNER.address.lower()
        if ready.library is not None:  # @dcl/crypto accepts it too
            assert ready.library == {"ok": True, "message": None}
        return

    with pytest.raises(SignedFetchError) as caught:
        await run()
    error = caught.value
    assert error.status == case.status
    if callable(case.message):
        assert error.message == case.message(ready.headers, signed)
    elif case.message is not None:
        assert error.message == case.message
    if case.prefix is not None:
        assert error.message.startswith(case.prefix)
    for value in ready.headers.values():  # never echo a signature
        for signature in SIGNATURE_IN_LINK.findall(value):
            assert signature.lower() not in error.message.lower()
    if ready.library is not None:  # same verdict and reason as @dcl/crypto
        assert ready.library["ok"] is False
        assert error.message == f"Invalid signature: {ready.library['message']}"


def test_every_library_case_was_compared(prepared: dict[str, Prepared]) -> None:
    compared = [name for name, ready in prepared.items() if ready.library is not None]
    assert len(compared) >= 20
