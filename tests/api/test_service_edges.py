"""Operational edges: body limit, CORS, health, metrics, OpenAPI, and no secrets in logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.api.conftest import LIVEKIT_SECRET, SIGNING_KEY, Harness
from tests.support.signing import scene_metadata, signed_headers


def test_body_over_16k_is_413(h: Harness) -> None:
    r = h.client.post("/cast/watcher-token", content=b"{" + b" " * 17000 + b"}")
    assert r.status_code == 413
    assert "error" in r.json()


def test_chunked_body_over_limit_is_413(h: Harness) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 1024

    r = h.client.post("/cast/watcher-token", content=chunks())
    assert r.status_code == 413


def test_cors_preflight(h: Harness) -> None:
    r = h.client.options(
        "/cast/watcher-token",
        headers={"Origin": "https://cast.example", "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "https://cast.example")
    assert r.headers["access-control-max-age"] == "36000"
    r = h.client.post(
        "/cast/watcher-token",
        json={"location": "1,1", "identity": "x"},
        headers={"Origin": "https://cast.example"},
    )
    assert "access-control-allow-origin" in r.headers


def test_health(h: Harness) -> None:
    assert h.client.get("/healthz").json() == {"status": "ok"}
    assert h.client.get("/readyz").status_code == 200


def test_metrics(h: Harness) -> None:
    key = h.key()
    h.client.post("/cast/streamer-token", json={"token": key, "identity": "x"})
    h.client.post("/cast/watcher-token", json={"location": "10,20", "identity": "x"})
    h.client.get("/cast/generate-stream-link")  # rejected: no chain
    text = h.client.get("/metrics").text
    assert 'cast_tokens_minted_total{role="streamer"} 1.0' in text
    assert 'cast_tokens_minted_total{role="watcher"} 1.0' in text
    assert 'cast_signed_fetch_rejections_total{reason="invalid_chain"} 1.0' in text
    assert 'route="/cast/streamer-token"' in text
    assert "cast_http_request_duration_seconds_bucket" in text
    assert key not in text


def test_openapi_documents_every_route(h: Harness) -> None:
    spec = h.client.get("/openapi.json").json()
    paths = spec["paths"]
    expected = {
        ("/cast/streamer-token", "post"),
        ("/cast/watcher-token", "post"),
        ("/cast/generate-stream-link", "get"),
        ("/cast/stream-info/{streamingKey}", "get"),
        ("/cast/presentation-bot-token", "post"),
        ("/cast/presenters", "get"),
        ("/cast/presenters/{participantIdentity}", "put"),
        ("/cast/presenters/{participantIdentity}", "delete"),
    }
    assert {(p, m) for p, ops in paths.items() for m in ops if p.startswith("/cast")} == expected
    body = paths["/cast/streamer-token"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["required"]) == {"token", "identity"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["StreamLinkResponse"]["required"]) == {
        "streamLink",
        "watcherLink",
        "streamingKey",
        "placeId",
        "placeName",
        "expiresAt",
        "expiresInDays",
    }
    assert set(schemas["WatcherTokenResponse"]["properties"]) >= {"placeName", "roomId", "url"}


def test_unknown_route_404_json(h: Harness) -> None:
    r = h.client.get("/cast/nope")
    assert r.status_code == 404


@pytest.mark.parametrize("level", [logging.DEBUG])
def test_no_secret_reaches_logs(h: Harness, caplog: pytest.LogCaptureFixture, level: int) -> None:
    caplog.set_level(level)
    headers = signed_headers(
        h.admin, "GET", "/cast/generate-stream-link", scene_metadata(), now=h.clock.now()
    )
    r = h.client.get("/cast/generate-stream-link", headers=headers)
    key = r.json()["streamingKey"]
    secrets = [key, key.split(".")[1], SIGNING_KEY, LIVEKIT_SECRET]
    for name, value in headers.items():
        if name.startswith("x-identity-auth-chain-"):
            import json

            signature = json.loads(value)["signature"]
            if signature:
                secrets.append(signature.removeprefix("0x")[:40])
    tokens = []
    tokens.append(
        h.client.post("/cast/streamer-token", json={"token": key, "identity": "a"}).json()["token"]
    )
    tokens.append(
        h.client.post("/cast/presentation-bot-token", json={"streamingKey": key}).json()["token"]
    )
    tokens.append(
        h.client.post("/cast/watcher-token", json={"location": "10,20", "identity": "a"}).json()[
            "token"
        ]
    )
    h.client.get(f"/cast/stream-info/{key}")
    h.client.post("/cast/streamer-token", json={"token": key[:-2] + "zz", "identity": "a"})
    h.rooms.down = True
    h.client.post("/cast/streamer-token", json={"token": key, "identity": "a"})
    h.store.unavailable = True
    h.clock.advance(5 * 86400)
    h.signed("GET", "/cast/generate-stream-link")
    # A tampered chain must not echo its signature either.
    bad = dict(headers)
    bad["x-identity-timestamp"] = str(int(headers["x-identity-timestamp"]) + 1)
    h.client.get("/cast/generate-stream-link", headers=bad)
    # The test client's own request log (client side, not the server) is left out.
    server_side = [r for r in caplog.records if not r.getMessage().startswith("HTTP Request: ")]
    assert server_side, "the flow should have logged something at DEBUG"
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in server_side)
    for secret in [*secrets, *(t.split(".")[2] for t in tokens)]:
        assert secret not in text


class _DownDirectory:
    """A place directory whose upstream is failing (what DecentralandPlaceDirectory raises)."""

    async def _down(self, *_: object) -> None:
        from cast_core.places import DirectoryUnavailable

        raise DirectoryUnavailable("Places API answered 502")

    place_by_parcel = world_place = world_by_name = place_by_id = is_admin = _down

    async def aclose(self) -> None:
        return None


def test_failing_directory_upstream_is_503_not_500(h: Harness) -> None:
    key = h.key()
    h.client.app.state.cast.service.directory = _DownDirectory()  # type: ignore[attr-defined]
    r = h.client.post("/cast/watcher-token", json={"location": "10,20", "identity": "x"})
    assert (r.status_code, r.json()) == (
        503,
        {"error": "Place directory is unavailable, try again later"},
    )
    assert h.generate().status_code == 503
    assert h.signed("GET", "/cast/presenters").status_code == 503
    # Routes that need no directory keep working.
    assert (
        h.client.post("/cast/streamer-token", json={"token": key, "identity": "x"}).status_code
        == 200
    )
    assert h.client.get(f"/cast/stream-info/{key}").status_code == 200


def test_unexpected_error_is_500_without_the_key_in_logs(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    key = h.key()

    async def broken(_: str) -> None:
        raise RuntimeError(f"boom while reading {key}")

    h.client.app.state.cast.service.link_for_key = broken  # type: ignore[attr-defined]
    caplog.set_level(logging.DEBUG)
    # raise_server_exceptions stays on: nothing may be re-raised to the server, whose own
    # error log would print the exception message.
    r = h.client.get(f"/cast/stream-info/{key}")
    assert (r.status_code, r.json()) == (500, {"error": "Internal Server Error"})
    logged = [rec for rec in caplog.records if rec.name.startswith("cast_api")]
    assert any("RuntimeError" in rec.getMessage() for rec in logged)
    assert all(key not in rec.getMessage() for rec in logged)


def test_cast_api_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from cast_api.main import parse_args

    monkeypatch.setenv("CAST_API_PORT", "9999")
    monkeypatch.setenv("CAST_API_HOST", "0.0.0.0")
    assert (parse_args([]).host, parse_args([]).port) == ("0.0.0.0", 9999)
    args = parse_args(["--port", "8181", "--host", "127.0.0.1", "--log-level", "debug"])
    assert (args.host, args.port, args.log_level) == ("127.0.0.1", 8181, "debug")
