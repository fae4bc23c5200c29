"""ADR-44 signed fetch, verified as `@dcl/crypto-middleware` 4.1.0 does (reference-behavior §9).

A request carries an auth chain in `x-identity-auth-chain-0..9`, a ms timestamp in
`x-identity-timestamp` and JSON metadata in `x-identity-metadata`. The last link must sign
`method:path:timestamp:metadata` (lowercased). Checks run in the reference's order and fail with
its statuses and messages, so clients see the same answers as from the reference service:

1. chain shape (400)  2. timestamp syntax (400)  3. ±window (401)  4. metadata (400)
5. route metadata validator (400)  6. signatures (401; 503 when the catalyst fails).

Where the reference leans on JavaScript semantics (`Number()`, `Date.parse`, `JSON.stringify`)
this module reproduces them, because their results show up in error messages or decide validity.
Error messages never contain a signature.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError

AUTH_CHAIN_HEADER_PREFIX: Final = "x-identity-auth-chain-"
AUTH_TIMESTAMP_HEADER: Final = "x-identity-timestamp"
AUTH_METADATA_HEADER: Final = "x-identity-metadata"

DEFAULT_CATALYST_URL: Final = "https://peer.decentraland.org"
DEFAULT_WINDOW_MS: Final = 60_000
MAX_CHAIN_LENGTH: Final = 10
# Our own bounds (the reference has none): an Explorer link is < 1 KiB, its metadata < 1 KiB.
MAX_LINK_BYTES: Final = 8 * 1024
MAX_METADATA_BYTES: Final = 8 * 1024
# Metadata is echoed back through a recursive serialiser; real metadata nests 2 levels.
MAX_METADATA_DEPTH: Final = 64
MAX_CATALYST_RESPONSE_BYTES: Final = 64 * 1024

SIGNER: Final = "SIGNER"
ECDSA_PERSONAL_EPHEMERAL: Final = "ECDSA_EPHEMERAL"
ECDSA_PERSONAL_SIGNED_ENTITY: Final = "ECDSA_SIGNED_ENTITY"
ECDSA_EIP_1654_EPHEMERAL: Final = "ECDSA_EIP_1654_EPHEMERAL"
ECDSA_EIP_1654_SIGNED_ENTITY: Final = "ECDSA_EIP_1654_SIGNED_ENTITY"

_EPHEMERAL_PREFIX: Final = "Ephemeral address: "
_EXPIRATION_PREFIX: Final = "Expiration: "


@dataclass(frozen=True)
class SignedRequest:
    """What a route needs after verification."""

    signer: str  # SIGNER payload, lowercased
    metadata: dict[str, Any]  # parsed x-identity-metadata


class SignedFetchError(Exception):
    """Rejection; the route answers `{"ok": False, "message": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CatalystValidator(Protocol):
    """Validates EIP-1654 (contract wallet) chains remotely."""

    async def validate(self, chain: list[dict[str, Any]], payload: str) -> str | None:
        """The owner address if the catalyst says valid, None if invalid.

        Raises SignedFetchError(503, ...) when the catalyst can't give an answer.
        """
        ...


# --------------------------------------------------------------------------------------------
# Small pure helpers


def _safe(value: str, limit: int = 64) -> str:
    """Truncate attacker-supplied text echoed into a message (as the reference does)."""
    return value[:limit] + "…" if len(value) > limit else value


def _byte_len(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """One header as the reference sees it: duplicates joined with ", " (fetch `Headers`).

    So a repeated timestamp or link never parses, as in the reference.
    """
    getlist = getattr(headers, "getlist", None)
    if callable(getlist):
        values: list[str] = list(getlist(name))
        return ", ".join(values) if values else None
    return headers.get(name)


def _reject_constant(name: str) -> Any:
    # JSON.parse has no NaN/Infinity literals.
    raise ValueError(f"Unexpected token {name[0]}")


def _parse_int(text: str) -> int | float:
    # Past ~309 digits a JS number is Infinity; also keeps int() below its digit limit.
    return int(text) if len(text) <= 400 else float(text)


def _parse_json(text: str) -> Any:
    """JSON.parse equivalent; raises ValueError with a message that quotes no input."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except RecursionError:
        raise ValueError("Maximum nesting depth exceeded") from None


def _json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    depth = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            depth = max(depth, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            depth = max(depth, level)
            stack.extend((child, level + 1) for child in item)
    return depth


# JS StringToNumber: WhiteSpace + LineTerminator, decimal literal, 0x/0o/0b (unsigned).
_JS_WHITESPACE: Final = (
    "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_DECIMAL: Final = re.compile(
    r"[+-]?(?:Infinity|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
)
_JS_RADIX: Final = re.compile(r"0(?:[xX](?P<x>[0-9a-fA-F]+)|[oO](?P<o>[0-7]+)|[bB](?P<b>[01]+))")


def _js_string_to_number(text: str) -> float:
    """`Number(text)` as JavaScript computes it (NaN when not numeric)."""
    stripped = text.strip(_JS_WHITESPACE)
    if not stripped:
        return 0.0
    if _JS_DECIMAL.fullmatch(stripped):
        return float(stripped)
    match = _JS_RADIX.fullmatch(stripped)
    if match is None:
        return math.nan
    prefix = match.lastgroup or "x"
    try:
        return float(int(match[prefix], {"x": 16, "o": 8, "b": 2}[prefix]))
    except OverflowError:
        return math.inf


def _js_number_to_string(value: float) -> str:
    """`String(value)` as JavaScript formats a number (Number::toString, radix 10)."""
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"  # also -0
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    sign = "-" if value < 0 else ""
    # repr() gives the shortest round-tripping digits, which is what JS prints.
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    k = len(digits)
    n = exponent + len(digit_tuple)  # value = 0.digits * 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_ARRAY_INDEX: Final = re.compile(r"0|[1-9][0-9]{0,9}")


def _js_quote(text: str) -> str:
    # Same escapes as JSON.stringify; lone surrogates escaped (well-formed JSON.stringify).
    quoted = json.dumps(text, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def _js_stringify(value: Any) -> str:
    """`JSON.stringify(value)` for parsed JSON (depth-bounded by the caller)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return "null"
        return _js_number_to_string(number) if math.isfinite(number) else "null"
    if isinstance(value, str):
        return _js_quote(value)
    if isinstance(value, list):
        return "[" + ",".join(_js_stringify(item) for item in value) + "]"
    if isinstance(value, dict):
        # JS objects list array-index keys first, ascending, then the rest in insertion order.
        indices = sorted(
            (k for k in value if _ARRAY_INDEX.fullmatch(k) and int(k) <= 2**32 - 2), key=int
        )
        index_set = set(indices)
        keys = indices + [k for k in value if k not in index_set]
        return "{" + ",".join(f"{_js_quote(k)}:{_js_stringify(value[k])}" for k in keys) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


_ISO_DATE: Final = re.compile(
    r"(?P<year>[0-9]{4}|[+-][0-9]{6})"
    r"(?:-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2}))?)?"
    r"(?:T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?)?"
    r"(?P<tz>Z|(?P<tz_sign>[+-])(?P<tz_hour>[0-9]{2}):(?P<tz_minute>[0-9]{2}))?)?"
)
_MAX_TIME_MS: Final = 8_640_000_000_000_000


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (day may overflow the month)."""
    y = year - (1 if month <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _parse_js_date(text: str) -> int | None:
    """`Date.parse` for the ECMAScript date-time string format (what toISOString emits).

    As in V8: any number of fraction digits (ms kept), day 1..31 rolls over the month, 24:00
    allowed. A date-time without an offset is taken as UTC (V8 would use the server's zone).
    V8's fallback for legacy formats is not reproduced: such dates are rejected.
    """
    m = _ISO_DATE.fullmatch(text)
    if m is None or m["year"] == "-000000":
        return None
    year, month, day = int(m["year"]), int(m["month"] or 1), int(m["day"] or 1)
    hour, minute, second = int(m["hour"] or 0), int(m["minute"] or 0), int(m["second"] or 0)
    millis = int((m["fraction"] or "0")[:3].ljust(3, "0"))
    if not (1 <= month <= 12 and 1 <= day <= 31 and minute <= 59 and second <= 59):
        return None
    if hour > 24 or (hour == 24 and (minute or second or millis)):
        return None
    offset = 0
    if m["tz_sign"]:
        tz_hour, tz_minute = int(m["tz_hour"]), int(m["tz_minute"])
        if tz_hour > 23 or tz_minute > 59:
            return None
        offset = (tz_hour * 60 + tz_minute) * 60_000 * (1 if m["tz_sign"] == "+" else -1)
    days = _days_from_civil(year, month, day)
    ms = days * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset
    return ms if abs(ms) <= _MAX_TIME_MS else None


def build_payload(method: str, path: str, timestamp: str | None, metadata: str | None) -> str:
    """The signed string: raw parts joined with ":" and lowercased; absent parts are empty."""
    return ":".join([method, path, timestamp or "", metadata or ""]).lower()


# --------------------------------------------------------------------------------------------
# Steps of the verification, in the reference's order


def _extract_chain(headers: Mapping[str, str]) -> list[dict[str, str]]:
    chain: list[dict[str, str]] = []
    for index in range(MAX_CHAIN_LENGTH):
        raw = _header(headers, f"{AUTH_CHAIN_HEADER_PREFIX}{index}")
        if not raw:
            break
        if _byte_len(raw) > MAX_LINK_BYTES:
            raise SignedFetchError(
                400,
                f"Invalid chain format: auth link at position {index} "
                f"exceeds {MAX_LINK_BYTES} bytes",
            )
        try:
            parsed = _parse_json(raw)
        except ValueError as exc:
            raise SignedFetchError(400, f"Invalid chain format: {_safe(str(exc))}") from None
        if not (
            isinstance(parsed, dict)
            and all(
                isinstance(parsed.get(field), str) for field in ("type", "payload", "signature")
            )
        ):
            raise SignedFetchError(
                400, f"Invalid chain format: malformed auth link at position {index}"
            )
        # Only the three link fields are used or forwarded; extra fields are dropped.
        chain.append(
            {"type": parsed["type"], "payload": parsed["payload"], "signature": parsed["signature"]}
        )
    if _header(headers, f"{AUTH_CHAIN_HEADER_PREFIX}{MAX_CHAIN_LENGTH}"):
        raise SignedFetchError(400, f"Auth chain exceeds maximum length of {MAX_CHAIN_LENGTH}")
    if len(chain) <= 1:
        raise SignedFetchError(400, "Invalid Auth Chain")
    return chain


def _parse_timestamp(raw: str | None) -> float:
    if not raw:
        return 0.0  # missing ⇒ 0 ⇒ expired
    timestamp = _js_string_to_number(raw)
    if not math.isfinite(timestamp):
        raise SignedFetchError(400, f"Invalid chain timestamp: {_safe(raw)}")
    return timestamp


def _check_window(timestamp: float, now_ms: int, window_ms: int) -> None:
    if timestamp + window_ms < now_ms:
        raise SignedFetchError(
            401,
            f"Expired signature: signature timestamp: {_js_number_to_string(timestamp)}, "
            f"timestamp expiration: {_js_number_to_string(timestamp + window_ms)}, "
            f"local timestamp: {now_ms}",
        )
    # Without this a far-future timestamp would make a signature that never expires.
    if timestamp > now_ms + window_ms:
        raise SignedFetchError(
            401,
            "Signature timestamp is too far in the future: "
            f"signature timestamp: {_js_number_to_string(timestamp)}, local timestamp: {now_ms}",
        )


def _parse_metadata(raw: str | None) -> dict[str, Any]:
    def invalid() -> SignedFetchError:
        return SignedFetchError(400, f'Invalid chain metadata: "{_safe(raw or "")}"')

    if raw is None:
        return {}
    if _byte_len(raw) > MAX_METADATA_BYTES:
        raise invalid()
    try:
        parsed = _parse_json(raw)
    except ValueError:
        raise invalid() from None
    if parsed is None:
        return {}  # 4.1.0: an explicit `null` is empty metadata
    if not isinstance(parsed, dict) or _json_depth(parsed) > MAX_METADATA_DEPTH:
        raise invalid()
    return parsed


def is_eip1654_chain(chain: list[dict[str, str]]) -> bool:
    """Contract-wallet chains, which go to the catalyst instead of local recovery."""
    return (
        len(chain) in (2, 3)
        and chain[0]["type"] == SIGNER
        and chain[1]["type"] == ECDSA_EIP_1654_EPHEMERAL
    )


# --------------------------------------------------------------------------------------------
# Personal-signature chain validation (`@dcl/crypto` Authenticator.validateSignature)


class _LinkError(Exception):
    """A link failed; its message goes into `ERROR. Link type: <type>. <message>.`."""


_HEX_SIGNATURE: Final = re.compile(r"0x[0-9a-fA-F]+")


def _recover_personal_signer(signature: str, message: str) -> str:
    """Address (lowercase) whose personal_sign of `message` is `signature`."""
    if not _HEX_SIGNATURE.fullmatch(signature):
        raise _LinkError("String signatures must be encoded in hex")
    digits = signature[2:]
    raw = bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)
    if len(raw) != 65:
        raise _LinkError("Invalid ethereum signature")
    v = raw[64]
    if v in (0, 1):
        v += 27
    if v not in (27, 28):
        raise _LinkError(f"Invalid signature recovery value: {v}. Expected 27 or 28.")
    # JS encodes lone surrogates as U+FFFD; Python would refuse them.
    text = _LONE_SURROGATE.sub("\ufffd", message)
    try:
        address: str = Account.recover_message(
            encode_defunct(text=text), signature=raw[:64] + bytes([v])
        )
    except (BadSignature, ValidationError, ValueError):  # r or s out of range, no such point
        raise _LinkError("Could not recover the signer address") from None
    return address.lower()


def _parse_ephemeral_payload(payload: str) -> tuple[str, str, int]:
    """(signed message, ephemeral address, expiration ms) of an ephemeral link's payload."""
    message = payload.replace("\r", "")
    lines = message.split("\n")
    if (
        len(lines) < 3
        or not lines[1].startswith(_EPHEMERAL_PREFIX)
        or not lines[2].startswith(_EXPIRATION_PREFIX)
    ):
        raise _LinkError(
            f'Invalid ephemeral payload. Expected 3 lines with "{_EPHEMERAL_PREFIX}" on line 2 '
            f'and "{_EXPIRATION_PREFIX}" on line 3.'
        )
    ephemeral_address = lines[1][len(_EPHEMERAL_PREFIX) :]
    expiration_text = lines[2][len(_EXPIRATION_PREFIX) :]
    expiration = _parse_js_date(expiration_text)
    if expiration is None:
        raise _LinkError(f'Invalid expiration date in ephemeral payload: "{expiration_text}"')
    return message, ephemeral_address, expiration


def _require_signature(link: dict[str, str], validator: str) -> None:
    if not link["signature"]:
        raise _LinkError(f"Invalid AuthLink. 'signature' must be present for type '{validator}'")


def _check_signer(authority: str, actual: str) -> None:
    expected = authority.lower()
    if expected != actual:
        raise _LinkError(f"Invalid signer address. Expected: {expected}. Actual: {actual}")


def _next_authority(authority: str, link: dict[str, str], now_ms: int) -> str:
    """Run one link's validator; returns the authority it hands to the next link."""
    kind = link["type"]
    if kind == SIGNER:
        return link["payload"]
    if kind == ECDSA_PERSONAL_SIGNED_ENTITY:
        _require_signature(link, "ECDSA_SIGNED_ENTITY_VALIDATOR")
        _check_signer(authority, _recover_personal_signer(link["signature"], link["payload"]))
        return link["payload"]
    if kind in (ECDSA_PERSONAL_EPHEMERAL, ECDSA_EIP_1654_EPHEMERAL):
        personal = kind == ECDSA_PERSONAL_EPHEMERAL
        _require_signature(
            link,
            "ECDSA_PERSONAL_EPHEMERAL_VALIDATOR"
            if personal
            else "ECDSA_EIP_1654_EPHEMERAL_VALIDATOR",
        )
        message, ephemeral_address, expiration = _parse_ephemeral_payload(link["payload"])
        if expiration > now_ms:
            if not personal:
                raise _LinkError("Missing provider")  # the reference passes no RPC provider
            _check_signer(authority, _recover_personal_signer(link["signature"], message))
            return ephemeral_address
        raise _LinkError(f"Ephemeral key expired. Expiration: {expiration}. Test: {now_ms}")
    if kind == ECDSA_EIP_1654_SIGNED_ENTITY:
        _require_signature(link, "EIP_1654_SIGNED_ENTITY_VALIDATOR")
        raise _LinkError("Missing provider")
    return ""  # unknown type: no authority, so the chain fails later


def validate_personal_chain(payload: str, chain: list[dict[str, str]], now_ms: int) -> str | None:
    """None if `chain` ends in a valid signature of `payload`, else the reference's reason."""
    for index, link in enumerate(chain):
        if (index == 0) != (link["type"] == SIGNER):
            return "ERROR: Malformed authChain"
    authority = ""
    for link in chain:
        try:
            authority = _next_authority(authority, link, now_ms)
        except _LinkError as exc:
            return f"ERROR. Link type: {link['type']}. {exc}."
    if authority != payload:
        return f"ERROR: Invalid final authority. Expected: {payload}. Current {authority}."
    return None


# --------------------------------------------------------------------------------------------
# Entry point


async def verify_signed_fetch(
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    now_ms: int,
    metadata_validator: Callable[[dict[str, Any]], bool] | None,
    catalyst: CatalystValidator | None,
    window_ms: int = DEFAULT_WINDOW_MS,
) -> SignedRequest:
    """Verify an ADR-44 signed request or raise SignedFetchError.

    `path` is the raw (percent-encoded) request path without the query, as the client signed it.
    `headers` is looked up with lowercase names: starlette `Headers` (repeated headers are joined
    with ", ", as fetch does) or a dict with lowercase keys. `catalyst` None disables the
    contract-wallet path: such chains then fail locally with "Missing provider".
    A `metadata_validator` that raises propagates, as in the reference.
    """
    chain = _extract_chain(headers)
    raw_timestamp = _header(headers, AUTH_TIMESTAMP_HEADER)
    timestamp = _parse_timestamp(raw_timestamp)
    # Expiry before metadata and signatures: stale replays cost no validator or catalyst call.
    _check_window(timestamp, now_ms, window_ms)
    raw_metadata = _header(headers, AUTH_METADATA_HEADER)
    metadata = _parse_metadata(raw_metadata)
    if metadata_validator is not None and not metadata_validator(metadata):
        raise SignedFetchError(400, f"Invalid metadata content: {_js_stringify(metadata)}")

    payload = build_payload(method, path, raw_timestamp, raw_metadata)
    owner = chain[0]["payload"].lower()
    if catalyst is not None and is_eip1654_chain(chain):
        owner_address = await catalyst.validate([dict(link) for link in chain], payload)
        if owner_address is None or owner_address.lower() != owner:
            raise SignedFetchError(401, "Invalid signature")
        return SignedRequest(signer=owner, metadata=metadata)

    reason = validate_personal_chain(payload, chain, now_ms)
    if reason is not None:
        raise SignedFetchError(401, f"Invalid signature: {reason}")
    return SignedRequest(signer=owner, metadata=metadata)


# --------------------------------------------------------------------------------------------
# Catalyst (EIP-1654 / contract wallets)


def _origin(url: str) -> str:
    """WHATWG `new URL(url).origin` for http(s) URLs."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"catalyst URL must be an absolute http(s) URL: {url!r}")
    host = parts.hostname  # lowercased by urlsplit
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default_port = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default_port) else f"{scheme}://{host}:{port}"


def _error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class HttpxCatalystValidator:
    """Asks a catalyst's `/lambdas/crypto/validate-signature` (reference §9.3)."""

    def __init__(
        self,
        base_url: str = DEFAULT_CATALYST_URL,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.origin = _origin(base_url)
        self._timeout = timeout
        self._owns_client = client is None
        self._client = client

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Created on first use (an SSL context is costly); fetch() follows redirects too.
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=True)
        return self._client

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def validate(self, chain: list[dict[str, Any]], payload: str) -> str | None:
        url = f"{self.origin}/lambdas/crypto/validate-signature"
        # The payload travels in the field named "timestamp" (catalyst API).
        body = json.dumps({"authChain": chain, "timestamp": payload}).encode("ascii")
        invalid_response = f'Invalid response from catalyst "{self.origin}"'
        try:
            async with self._http().stream(
                "POST",
                url,
                content=body,
                headers={"content-type": "application/json", "accept": "application/json"},
                timeout=self._timeout,
            ) as response:
                if not response.is_success:
                    raise SignedFetchError(
                        503, f'Catalyst "{self.origin}" returned HTTP {response.status_code}'
                    )
                try:
                    data = bytearray()
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) > MAX_CATALYST_RESPONSE_BYTES:
                            raise ValueError("response too large")
                except (httpx.HTTPError, ValueError) as exc:
                    raise SignedFetchError(503, f"{invalid_response}: {_error_text(exc)}") from None
        except httpx.HTTPError as exc:
            raise SignedFetchError(
                503, f'Error connecting to catalyst "{self.origin}": {_error_text(exc)}'
            ) from None

        try:
            parsed = _parse_json(bytes(data).decode("utf-8-sig", errors="replace"))
            if not (
                isinstance(parsed, dict)
                and isinstance(parsed.get("valid"), bool)
                and isinstance(parsed.get("ownerAddress"), str)
            ):
                raise ValueError("unexpected response shape")
        except ValueError as exc:
            raise SignedFetchError(503, f"{invalid_response}: {_error_text(exc)}") from None
        owner_address: str = parsed["ownerAddress"]
        return owner_address if parsed["valid"] else None
