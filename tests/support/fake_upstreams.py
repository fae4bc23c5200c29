"""A local fake of the Decentraland upstreams (Places, Lambdas, Worlds, lease list, catalyst):
a real HTTP server on 127.0.0.1 serving the reference's response shapes (reference-behavior §10)
and recording every request as received, so URL encoding is checked on the wire."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

# ------------------------------------------------------------------------------------------
# The fake upstreams


@dataclass
class Seen:
    method: str
    path: str  # raw, still percent-encoded
    query: str  # raw query string
    params: list[tuple[str, str]]  # the query as the server parsed it
    body: bytes


def place_json(
    place_id: str,
    positions: list[str],
    *,
    world_name: str | None = None,
    title: str | None = "A place",
) -> dict[str, Any]:
    """A Places API place with the fields the reference's PlaceAttributes carries."""
    return {
        "id": place_id,
        "title": title,
        "description": None,
        "image": None,
        "owner": None,
        "positions": positions,
        "base_position": positions[0],
        "likes": 0,
        "dislikes": 0,
        "favorites": 0,
        "highlighted": False,
        "disabled": False,
        "world": world_name is not None,
        "world_name": world_name,
        "categories": [],
    }


def world_rights_json(
    *,
    owner: str | None = None,
    streaming: list[str] | None = None,
    deployment: list[str] | None = None,
    streaming_type: str = "allow-list",
) -> dict[str, Any]:
    """Worlds content server `GET /world/{name}/permissions`."""
    doc: dict[str, Any] = {
        "permissions": {
            "deployment": {"type": "allow-list", "wallets": deployment or []},
            "streaming": {"type": streaming_type, "wallets": streaming or []},
            "access": {"type": "unrestricted"},
        },
        "summary": {},
    }
    if owner is not None:
        doc["owner"] = owner
    return doc


def allow_listed(kind: str, wallet: str) -> dict[str, Any]:
    if kind == "streaming":
        return world_rights_json(streaming=[wallet])
    return world_rights_json(deployment=[wallet])


@dataclass
class FakeUpstreams:
    """Places API (/api), Lambdas and the catalyst (/lambdas), Worlds content server (/worlds)
    and the land-lease list (/leases.json), as one ASGI app."""

    base: str = ""
    requests: list[Seen] = field(default_factory=list)
    places: dict[tuple[str | None, str | None], list[dict[str, Any]]] = field(default_factory=dict)
    worlds: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)
    land: dict[tuple[str, str, str], dict[str, bool]] = field(default_factory=dict)
    world_rights: dict[str, dict[str, Any]] = field(default_factory=dict)
    world_parcels: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    leases: list[dict[str, Any]] = field(default_factory=list)
    catalyst: tuple[int, bytes] = (200, b"{}")
    fail: dict[str, int] = field(default_factory=dict)  # path prefix -> status
    raw: dict[str, bytes] = field(default_factory=dict)  # path prefix -> 200 body
    delay: dict[str, float] = field(default_factory=dict)  # path prefix -> seconds

    def reset(self) -> None:
        base = self.base
        self.__init__()  # type: ignore[misc]
        self.base = base

    def seen(self, prefix: str = "") -> list[Seen]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    @property
    def places_url(self) -> str:
        return f"{self.base}/api"

    @property
    def lambdas_url(self) -> str:
        return f"{self.base}/lambdas"

    @property
    def worlds_url(self) -> str:
        return f"{self.base}/worlds"

    @property
    def lease_url(self) -> str:
        return f"{self.base}/leases.json"

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self._handle(request)
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        raw_path = request.scope["raw_path"].decode("ascii")
        query = request.scope["query_string"].decode("ascii")
        body = await request.body()
        self.requests.append(
            Seen(request.method, raw_path, query, parse_qsl(query, keep_blank_values=True), body)
        )
        path = request.scope["path"]
        for prefix, seconds in self.delay.items():
            if path.startswith(prefix):
                await asyncio.sleep(seconds)
        for prefix, status in self.fail.items():
            if path.startswith(prefix):
                return JSONResponse({"ok": False, "error": "boom"}, status_code=status)
        for prefix, content in self.raw.items():
            if path.startswith(prefix):
                return Response(content, media_type="application/json")
        # Split the raw path so an encoded "/" stays inside its segment.
        segments = [unquote(s) for s in raw_path.split("/")[1:]]
        return self._route(request.method, segments, dict(request.query_params), body)

    def _route(self, method: str, seg: list[str], query: dict[str, str], body: bytes) -> Response:
        not_found = JSONResponse({"ok": False, "error": "Not found"}, status_code=404)
        match (method, seg):
            case ("GET", ["api", "places"]):
                data = self.places.get((query.get("positions"), query.get("names")), [])
                return JSONResponse({"ok": True, "total": len(data), "data": data})
            case ("POST", ["api", "places", "status"]):
                ids = json.loads(body)
                data = [self.by_id[i] for i in ids if i in self.by_id]
                return JSONResponse({"ok": True, "data": data})
            case ("GET", ["api", "worlds", name]):
                if name not in self.worlds:
                    return not_found
                return JSONResponse({"ok": True, "data": self.worlds[name]})
            case ("GET", ["lambdas", "users", addr, "names"]):
                elements = [
                    {"name": n, "contractAddress": "0x2a18", "tokenId": "1", "price": None}
                    for n in self.names.get(addr, [])
                ]
                return JSONResponse(
                    {
                        "elements": elements,
                        "totalAmount": len(elements),
                        "pageNum": 1,
                        "pageSize": len(elements),
                    }
                )
            case ("GET", ["lambdas", "users", addr, "parcels", x, y, "permissions"]):
                rights = self.land.get((addr, x, y))
                return JSONResponse(rights) if rights is not None else not_found
            case ("POST", ["lambdas", "crypto", "validate-signature"]):
                status, content = self.catalyst
                return Response(content, status_code=status, media_type="application/json")
            case ("GET", ["worlds", "world", name, "permissions"]):
                # The real server answers unknown worlds too, with no owner.
                return JSONResponse(self.world_rights.get(name, world_rights_json()))
            case (
                "GET",
                ["worlds", "world", name, "permissions", kind, "address", addr, "parcels"],
            ):
                parcels = self.world_parcels.get((name, kind, addr))
                if parcels is None:
                    return JSONResponse({"error": "Permission not found"}, status_code=404)
                return JSONResponse({"total": len(parcels), "parcels": parcels})
            case ("GET", ["leases.json"]):
                return JSONResponse(self.leases)
        return not_found


def start_fake_server(fake: FakeUpstreams) -> tuple[uvicorn.Server, threading.Thread]:
    """Serve `fake` on 127.0.0.1 (ephemeral port) from a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    fake.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        fake.app, interface="asgi3", lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # start-up only; tests themselves never sleep
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake upstream server did not start")
        time.sleep(0.01)
    return server, thread
