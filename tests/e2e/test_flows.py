"""End-to-end flows on the real stack: real apiserver with the chart's RBAC, real livekit-server,
real LiveKit participants holding the tokens the API mints."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from livekit import api as lkapi

from cast_core.keys import link_name_from_key
from tests.e2e.participants import Participant
from tests.e2e.polling import wait_for
from tests.e2e.stack import Stack
from tests.support.signing import Identity, scene_metadata, signed_headers


def generate(stack: Stack, admin: Identity, scene_id: str, parcel: str = "0,0") -> dict[str, Any]:
    headers = signed_headers(
        admin,
        "GET",
        "/cast/generate-stream-link",
        scene_metadata(scene_id=scene_id, server_name="e2erealm", parcel=parcel),
        now=datetime.now(UTC),
    )
    r = httpx.get(f"{stack.api_url}/cast/generate-stream-link", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def post(stack: Stack, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{stack.api_url}{path}", json=body, timeout=30)


def status_condition(stack: Stack, name: str, kind: str) -> dict[str, Any] | None:
    raw = stack.kubectl("get", "sl", name, "-n", stack.namespace, "-o", "json", check=False)
    if not raw:
        return None
    for condition in json.loads(raw).get("status", {}).get("conditions", []):
        if condition["type"] == kind:
            return dict(condition)
    return None


def test_kubectl_shows_the_columns(stack: Stack, admin: Identity) -> None:
    link = generate(stack, admin, "bafycolumns", parcel="1,1")
    name = link_name_from_key(link["streamingKey"])
    assert name is not None
    out = stack.kubectl("get", "sl", "-n", stack.namespace, "-o", "wide")
    header = out.splitlines()[0].split()
    assert header == [
        "NAME", "PLACE", "LOCATION", "READY", "EXPIRES", "AGE", "ROOM", "REVOKED", "REASON",
    ]  # fmt: skip
    row = next(line for line in out.splitlines() if line.startswith(name)).split()
    assert row[1:3] == ["Demo", "Plaza"] or row[1] == "Demo"
    assert "e2erealm:bafycolumns" in row
    assert link["expiresAt"][:19] in out.replace("Z", "")
    # The resource never holds the key.
    assert link["streamingKey"].split(".")[1] not in stack.kubectl(
        "get", "sl", name, "-n", stack.namespace, "-o", "yaml"
    )


async def test_streamer_watcher_bot_and_presenters(stack: Stack, admin: Identity) -> None:
    link = generate(stack, admin, "bafyflow")
    key = link["streamingKey"]
    s = post(stack, "/cast/streamer-token", {"token": key, "identity": "streamer"}).json()
    w = post(stack, "/cast/watcher-token", {"location": "0,0", "identity": "viewer"}).json()
    b = post(stack, "/cast/presentation-bot-token", {"streamingKey": key}).json()
    assert s["roomId"] == w["roomId"] == b["roomId"] == "e2erealm:bafyflow"

    streamer, watcher, bot = Participant(), Participant(), Participant()
    try:
        await streamer.connect(s["url"], s["token"])
        await streamer.publish_audio()
        await watcher.connect(w["url"], w["token"])
        loud = await watcher.receive_audio_frames(wanted=20)
        assert loud >= 20

        # The watcher's token has canPublish false: LiveKit refuses its track.
        with pytest.raises(Exception):
            await asyncio.wait_for(watcher.publish_audio(), 15)

        await bot.connect(b["url"], b["token"])
        assert bot.room.local_participant.identity.startswith("presentation-bot:")
        assert bot.room.local_participant.attributes.get("cast.link") == link_name_from_key(key)

        # The streamer identity was made a presenter at token time, visible to clients.
        await wait_for(
            lambda: (
                s["identity"] in json.loads(watcher.room.metadata or "{}").get("presenters", [])
            ),
            15,
            "streamer in room metadata presenters",
        )
        watcher.metadata_changed.clear()
        presenter = "0x" + "ab" * 20
        headers = signed_headers(
            admin,
            "PUT",
            f"/cast/presenters/{presenter}",
            scene_metadata(scene_id="bafyflow", server_name="e2erealm", parcel="0,0"),
            now=datetime.now(UTC),
        )
        r = httpx.put(f"{stack.api_url}/cast/presenters/{presenter}", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        await asyncio.wait_for(watcher.metadata_changed.wait(), 15)
        seen = json.loads(watcher.room.metadata)["presenters"]
        assert presenter in seen and s["identity"] in seen
    finally:
        for p in (streamer, watcher, bot):
            await p.close()


async def _connected_streamer(stack: Stack, key: str) -> tuple[Participant, str]:
    s = post(stack, "/cast/streamer-token", {"token": key, "identity": "streamer"})
    assert s.status_code == 200, s.text
    streamer = Participant()
    await streamer.connect(s.json()["url"], s.json()["token"])
    await streamer.publish_audio()
    return streamer, s.json()["identity"]


async def test_kubectl_revoke_disconnects_the_streamer(stack: Stack, admin: Identity) -> None:
    link = generate(stack, admin, "bafyrevoke", parcel="0,1")
    key = link["streamingKey"]
    name = link_name_from_key(key) or ""
    streamer, _ = await _connected_streamer(stack, key)
    try:
        stack.kubectl(
            "patch", "sl", name, "-n", stack.namespace, "--type", "merge",
            "-p", '{"spec":{"revoked":true,"revocationReason":"RevokedByAdmin"}}',
        )  # fmt: skip
        await asyncio.wait_for(streamer.disconnected.wait(), 20)
        r = post(stack, "/cast/streamer-token", {"token": key, "identity": "again"})
        assert (r.status_code, r.json()) == (401, {"error": "Invalid or expired streaming token"})
        await wait_for(
            lambda: (status_condition(stack, name, "Revoked") or {}).get("status") == "True",
            15,
            "Revoked=True",
        )
        assert status_condition(stack, name, "Revoked")["reason"] == "RevokedByAdmin"  # type: ignore[index]
    finally:
        await streamer.close()


async def test_kubectl_delete_disconnects_the_streamer(stack: Stack, admin: Identity) -> None:
    link = generate(stack, admin, "bafydelete", parcel="1,0")
    key = link["streamingKey"]
    name = link_name_from_key(key) or ""
    streamer, _ = await _connected_streamer(stack, key)
    try:
        stack.kubectl("delete", "sl", name, "-n", stack.namespace, "--wait=false")
        await asyncio.wait_for(streamer.disconnected.wait(), 20)
        await wait_for(
            lambda: (
                not stack.kubectl(
                    "get", "sl", name, "-n", stack.namespace, "--ignore-not-found", "-o", "name"
                )
            ),
            20,
            "the finalizer to be released",
        )
    finally:
        await streamer.close()


async def test_expiry_disconnects_and_token_routes_answer_401(stack: Stack, links: Any) -> None:
    name, key, room = await links.create(ttl_seconds=12)
    stored = await links.store.get(name)
    deadline = stored.expiration_time.timestamp()
    streamer, identity = await _connected_streamer(stack, key)
    try:
        await asyncio.wait_for(streamer.disconnected.wait(), 40)
        latency = time.time() - deadline
        print(f"\n[e2e] expiry deadline -> streamer disconnected: {latency:.2f}s")
        assert 0 <= latency < 3.0  # never before the deadline, within the 2 s target + slack
        r = post(stack, "/cast/streamer-token", {"token": key, "identity": "late"})
        assert (r.status_code, r.json()) == (401, {"error": "Streaming token has expired"})
        r = post(stack, "/cast/presentation-bot-token", {"streamingKey": key})
        assert r.status_code == 401
        await wait_for(
            lambda: (status_condition(stack, name, "Expired") or {}).get("status") == "True",
            15,
            "Expired=True",
        )
        tb = stack.testbed_env
        async with lkapi.LiveKitAPI(
            tb["LIVEKIT_URL"].replace("ws://", "http://"),
            tb["LIVEKIT_API_KEY"],
            tb["LIVEKIT_API_SECRET"],
        ) as client:
            rooms = await client.room.list_rooms(lkapi.ListRoomsRequest(names=[room]))
            for found in rooms.rooms:
                assert identity not in json.loads(found.metadata or "{}").get("presenters", [])
    finally:
        await streamer.close()


# ---- RBAC ------------------------------------------------------------------------------------
SA = "system:serviceaccount:cast:{}"


@pytest.mark.parametrize(
    ("sa", "verb", "resource", "namespace", "allowed"),
    [
        ("cast-api", "create", "streamlinks.cast.decentraland.org", "cast", True),
        ("cast-api", "patch", "streamlinks.cast.decentraland.org", "cast", True),
        ("cast-api", "watch", "streamlinks.cast.decentraland.org", "cast", True),
        ("cast-api", "patch", "streamlinks.cast.decentraland.org/status", "cast", False),
        ("cast-api", "delete", "streamlinks.cast.decentraland.org", "cast", False),
        ("cast-api", "get", "secrets", "cast", False),
        ("cast-api", "get", "secrets", "kube-system", False),
        ("cast-api", "list", "pods", "cast", False),
        ("cast-api", "create", "streamlinks.cast.decentraland.org", "default", False),
        ("cast-operator", "patch", "streamlinks.cast.decentraland.org/status", "cast", True),
        ("cast-operator", "delete", "streamlinks.cast.decentraland.org", "cast", True),
        ("cast-operator", "create", "events", "cast", True),
        ("cast-operator", "create", "streamlinks.cast.decentraland.org", "cast", False),
        ("cast-operator", "get", "secrets", "cast", False),
        ("cast-operator", "get", "secrets", "kube-system", False),
        ("cast-operator", "list", "namespaces", "", False),
        ("cast-operator", "patch", "kopfpeerings.kopf.dev", "cast", False),
        ("cast-operator", "list", "configmaps", "cast", False),
    ],
)
def test_rbac_is_least_privilege(
    stack: Stack, sa: str, verb: str, resource: str, namespace: str, allowed: bool
) -> None:
    resource, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, resource, f"--as={SA.format(sa)}"]
    args += [f"--subresource={subresource}"] if subresource else []
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    answer = stack.kubectl(*args, check=False).strip()
    assert answer == ("yes" if allowed else "no")


def test_api_token_cannot_write_status(stack: Stack, admin: Identity) -> None:
    link = generate(stack, admin, "bafyrbac", parcel="1,1")
    name = link_name_from_key(link["streamingKey"]) or ""
    out = __import__("subprocess").run(
        [
            str(stack.bin / "kubectl"),
            f"--kubeconfig={stack.kubeconfig_for('cast-api')}",
            "patch", "sl", name, "-n", stack.namespace, "--subresource=status", "--type=merge",
            "-p", '{"status":{"evictedParticipants":7}}',
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert out.returncode != 0 and "forbidden" in out.stderr.lower()
