"""Faults, with nothing lost (issue 5): the apiserver, livekit-server and the operator each go
away mid-run on the real stack, and every link still ends up where it should."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from livekit import api as lkapi

from cast_core.keys import link_name_from_key
from cast_core.model import parse_time
from tests.e2e.conftest import Links
from tests.e2e.participants import Participant
from tests.e2e.polling import wait_for
from tests.e2e.stack import Stack, pid_alive
from tests.support.signing import Identity, scene_metadata, signed_headers

REALM = "faultrealm"
STORE_UNAVAILABLE = {"error": "Stream link storage is unavailable, try again later"}


# ---- small helpers ---------------------------------------------------------------------------


def signed_get(
    stack: Stack, admin: Identity, path: str, scene_id: str, method: str = "GET"
) -> httpx.Response:
    headers = signed_headers(
        admin,
        method,
        path,
        scene_metadata(scene_id=scene_id, server_name=REALM, parcel="0,0"),
        now=datetime.now(UTC),
    )
    return httpx.request(method, f"{stack.api_url}{path}", headers=headers, timeout=30)


def generate(stack: Stack, admin: Identity, scene_id: str) -> httpx.Response:
    return signed_get(stack, admin, "/cast/generate-stream-link", scene_id)


def post(stack: Stack, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{stack.api_url}{path}", json=body, timeout=30)


def link_body(stack: Stack, name: str) -> dict[str, Any]:
    raw = stack.kubectl("get", "sl", name, "-n", stack.namespace, "-o", "json")
    body: dict[str, Any] = json.loads(raw)
    return body


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for found in body.get("status", {}).get("conditions", []):
        if found["type"] == kind:
            return dict(found)
    return {}


def cleanup_done(body: dict[str, Any], terminal: str) -> bool:
    """cast_core.lifecycle.cleanup_complete, read from kubectl's view of the object."""
    synced = condition(body, "Synced")
    return (
        condition(body, terminal).get("status") == "True"
        and synced.get("status") == "True"
        and synced.get("observedGeneration") == body["metadata"]["generation"]
    )


def finished(stack: Stack, name: str, terminal: str) -> dict[str, Any] | None:
    """The link's body once its end-of-link cleanup is complete, else None."""
    body = link_body(stack, name)
    return body if cleanup_done(body, terminal) else None


def link_ready(stack: Stack, name: str) -> bool:
    return condition(link_body(stack, name), "Ready").get("status") == "True"


def revoke(stack: Stack, name: str, reason: str = "RevokedByAdmin") -> None:
    patch = json.dumps({"spec": {"revoked": True, "revocationReason": reason}})
    stack.kubectl("patch", "sl", name, "-n", stack.namespace, "--type", "merge", "-p", patch)


def events(stack: Stack, name: str, reason: str) -> list[dict[str, Any]]:
    raw = stack.kubectl(
        "get", "events", "-n", stack.namespace, "-o", "json",
        "--field-selector", f"involvedObject.name={name},reason={reason}",
    )  # fmt: skip
    items: list[dict[str, Any]] = json.loads(raw)["items"]
    return items


def crash(stack: Stack, name: str) -> list[str]:
    """SIGKILL a testbed component (no graceful shutdown); returns its argv for a restart."""
    pid = stack.component_pid(name)
    argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"{name} (pid {pid}) survived SIGKILL"
        time.sleep(0.05)
    return argv


def apiserver_ready(stack: Stack) -> bool:
    tb = stack.testbed_env
    try:
        ca = ssl.create_default_context(cafile=tb["TESTBED_CA"])
        r = httpx.get(f"{tb['TESTBED_APISERVER']}/readyz", verify=ca, timeout=2)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and r.text == "ok"


def livekit_ready(stack: Stack) -> bool:
    try:
        r = httpx.get(stack.testbed_env["LIVEKIT_URL"].replace("ws://", "http://"), timeout=2)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def livekit_api(stack: Stack) -> lkapi.LiveKitAPI:
    tb = stack.testbed_env
    return lkapi.LiveKitAPI(
        tb["LIVEKIT_URL"].replace("ws://", "http://"),
        tb["LIVEKIT_API_KEY"],
        tb["LIVEKIT_API_SECRET"],
    )


async def room_presenters(stack: Stack, room: str) -> list[str] | None:
    """The room's metadata presenters, or None when LiveKit has no such room."""
    async with livekit_api(stack) as client:
        found = await client.room.list_rooms(lkapi.ListRoomsRequest(names=[room]))
    for candidate in found.rooms:
        if candidate.name == room:
            presenters: list[str] = json.loads(candidate.metadata or "{}").get("presenters", [])
            return presenters
    return None


async def close_quietly(participant: Participant) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(participant.close(), 5)


async def streamer_token(stack: Stack, key: str) -> dict[str, Any]:
    r = post(stack, "/cast/streamer-token", {"token": key, "identity": "streamer"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# ---- a. the apiserver goes away ---------------------------------------------------------------
async def test_apiserver_outage_reads_from_cache_and_writes_503(
    stack: Stack, admin: Identity
) -> None:
    scene_a, scene_b = f"bafyfault-a-{uuid.uuid4().hex[:6]}", f"bafyfault-b-{uuid.uuid4().hex[:6]}"
    r = generate(stack, admin, scene_a)
    assert r.status_code == 200, r.text
    key_a = r.json()["streamingKey"]
    room_a = f"{REALM}:{scene_a}"
    name_a = link_name_from_key(key_a)
    assert name_a is not None
    await wait_for(lambda: link_ready(stack, name_a), 15, "Ready=True")

    # SIGKILL, not TERM: a crash, and the apiserver's graceful shutdown outlives stop_pid's 15 s.
    argv = crash(stack, "kube-apiserver")
    down_at = time.monotonic()
    restarted = False
    try:
        assert not apiserver_ready(stack)
        # Token routes answer from the watch cache.
        r = post(stack, "/cast/streamer-token", {"token": key_a, "identity": "during"})
        assert r.status_code == 200, r.text
        assert r.json()["roomId"] == room_a
        r = post(stack, "/cast/watcher-token", {"location": "0,0", "identity": "viewer"})
        assert r.status_code == 200, r.text
        assert r.json()["roomId"] == room_a
        r = httpx.get(f"{stack.api_url}/cast/stream-info/{key_a}", timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["placeId"] == "demo-plaza"

        # Writes fail fast with the reference's error shape: never 500, never a hang.
        started = time.monotonic()
        r = generate(stack, admin, scene_b)  # a new room: needs a new StreamLink
        create_503 = time.monotonic() - started
        assert (r.status_code, r.json()) == (503, STORE_UNAVAILABLE)
        presenter = "0x" + "cd" * 20
        started = time.monotonic()
        r = signed_get(stack, admin, f"/cast/presenters/{presenter}", scene_a, method="PUT")
        patch_503 = time.monotonic() - started
        assert (r.status_code, r.json()) == (503, STORE_UNAVAILABLE)
        print(
            f"\n[e2e] apiserver down: generate-stream-link 503 in {create_503:.2f}s, "
            f"PUT presenter 503 in {patch_503:.2f}s"
        )
        assert create_503 < 10 and patch_503 < 10
        # The API process stays up and alive; the cache stays "ready".
        assert httpx.get(f"{stack.api_url}/healthz", timeout=5).status_code == 200

        stack.restart_component("kube-apiserver", argv)
        restarted = True
        await wait_for(lambda: apiserver_ready(stack), 60, "kube-apiserver /readyz")
    finally:
        if not restarted:
            stack.restart_component("kube-apiserver", argv)
            await wait_for(lambda: apiserver_ready(stack), 60, "kube-apiserver /readyz")
    outage = time.monotonic() - down_at
    ready_at = time.monotonic()

    # Writes work again, with the same API process.
    async def generated() -> httpx.Response | None:
        r = await asyncio.to_thread(generate, stack, admin, scene_b)
        assert r.status_code in (200, 503), r.text
        return r if r.status_code == 200 else None

    r = await wait_for(generated, 30, "generate-stream-link to succeed again", every=0.5)
    recovered = time.monotonic() - ready_at
    print(f"[e2e] apiserver outage {outage:.1f}s; writes back {recovered:.2f}s after /readyz")
    key_b = r.json()["streamingKey"]
    name_b = link_name_from_key(key_b)
    assert name_b is not None
    token = await streamer_token(stack, key_b)
    assert token["roomId"] == f"{REALM}:{scene_b}"
    # The old link of the place was superseded by the new one.
    assert link_body(stack, name_a)["spec"]["revocationReason"] == "Superseded"

    # The watch caught up: a revocation made with kubectl (not through the API) reaches the
    # API's cache, and the operator (which also lost its watches) still acts on it.
    revoke(stack, name_b)
    started = time.monotonic()

    def refused() -> bool:
        r = httpx.get(f"{stack.api_url}/cast/stream-info/{key_b}", timeout=10)
        return r.status_code == 400

    await wait_for(refused, 30, "the API's cache to see the kubectl revocation")
    print(f"[e2e] kubectl revocation visible to the API after {time.monotonic() - started:.2f}s")
    body = await wait_for(
        lambda: finished(stack, name_b, "Revoked"),
        30,
        "the operator to finish the revocation",
    )
    assert condition(body, "Revoked")["reason"] == "RevokedByAdmin"


async def test_write_with_a_lagging_cache_still_supersedes(stack: Stack, admin: Identity) -> None:
    """After an outage the API's watch reconnects with backoff (and is refused while the
    apiserver's RBAC warms up), so its cache can be seconds behind. A write made then must still
    supersede the place's previous link (one active link per place) instead of retrying on the
    same stale resourceVersion and giving up. To hold the cache behind deterministically, the
    API's Role loses `watch` while the apiserver restarts (its open watch breaks), then gets it
    back."""
    scene_a, scene_b = f"bafystale-a-{uuid.uuid4().hex[:6]}", f"bafystale-b-{uuid.uuid4().hex[:6]}"
    r = generate(stack, admin, scene_a)
    assert r.status_code == 200, r.text
    key_a = r.json()["streamingKey"]
    name_a = link_name_from_key(key_a)
    assert name_a is not None
    await wait_for(lambda: link_ready(stack, name_a), 15, "Ready=True")

    role = ["role", "cast-api", "-n", stack.namespace]
    verbs = json.loads(stack.kubectl("get", *role, "-o", "json"))["rules"][0]["verbs"]
    assert "watch" in verbs

    def set_verbs(wanted: list[str]) -> None:
        patch = json.dumps([{"op": "replace", "path": "/rules/0/verbs", "value": wanted}])
        stack.kubectl("patch", *role, "--type", "json", "-p", patch)

    set_verbs([v for v in verbs if v != "watch"])
    try:
        argv = crash(stack, "kube-apiserver")
        stack.restart_component("kube-apiserver", argv)
        await wait_for(lambda: apiserver_ready(stack), 60, "kube-apiserver /readyz")
        # A change the API's cache cannot see (in the wild: the operator's status write that
        # the outage delayed, or any kubectl edit).
        stack.kubectl("annotate", "sl", name_a, "-n", stack.namespace, "e2e/touched=yes")

        async def generated() -> httpx.Response | None:
            r = await asyncio.to_thread(generate, stack, admin, scene_b)
            assert r.status_code in (200, 503), r.text
            return r if r.status_code == 200 else None

        r = await wait_for(generated, 30, "generate-stream-link to succeed", every=0.5)
        key_b = r.json()["streamingKey"]
        spec = link_body(stack, name_a)["spec"]
        assert (spec.get("revoked"), spec.get("revocationReason")) == (True, "Superseded"), (
            f"{name_a} was not superseded by {link_name_from_key(key_b)}: {spec}"
        )
    finally:
        set_verbs(verbs)
    # The watch comes back on its own: a kubectl revocation reaches the API's cache.
    name_b = link_name_from_key(key_b)
    assert name_b is not None
    revoke(stack, name_b)

    def refused() -> bool:
        return httpx.get(f"{stack.api_url}/cast/stream-info/{key_b}", timeout=10).status_code == 400

    await wait_for(refused, 30, "the API's watch to come back")


# ---- b. livekit-server goes away during a revocation ------------------------------------------
async def test_livekit_outage_during_revocation(stack: Stack, links: Links) -> None:
    name, key, room = await links.create(ttl_seconds=600)
    token = await streamer_token(stack, key)
    identity = token["identity"]
    first = Participant()
    again = Participant()
    argv: list[str] | None = None
    try:
        await first.connect(token["url"], token["token"])
        await first.publish_audio()
        await wait_for(lambda: link_ready(stack, name), 15, "Ready=True")

        argv = crash(stack, "livekit-server")
        revoke(stack, name)
        revoked_at = time.monotonic()

        # The operator's first attempt fails; it records the revocation and why cleanup is
        # pending instead of dropping it.
        def failure_recorded() -> dict[str, Any] | None:
            body = link_body(stack, name)
            reason = condition(body, "Synced").get("reason")
            return body if reason == "LiveKitUnavailable" else None

        body = await wait_for(failure_recorded, 10, "Synced=False (LiveKitUnavailable)")
        assert condition(body, "Revoked")["status"] == "True"
        assert condition(body, "Synced")["status"] == "False"
        assert not cleanup_done(body, "Revoked")
        await close_quietly(first)  # the crash dropped it; stop its SDK from reconnecting

        stack.restart_component("livekit-server", argv)
        argv = None
        await wait_for(lambda: livekit_ready(stack), 30, "livekit-server to answer")
        # LiveKit keeps rooms in memory, so the restart lost the room and its metadata. What can
        # still come back is a client holding a JWT minted before the revocation (valid for
        # 300 s): rejoin with it, and put the streamer back into the room's presenters as a
        # room that survived (multi-node LiveKit) would still have them.
        await again.connect(token["url"], token["token"])
        async with livekit_api(stack) as client:
            await client.room.update_room_metadata(
                lkapi.UpdateRoomMetadataRequest(
                    room=room, metadata=json.dumps({"presenters": [identity]})
                )
            )
        rejoined = time.monotonic() - revoked_at
        body = link_body(stack, name)
        assert not cleanup_done(body, "Revoked"), (
            f"the operator finished before the streamer could rejoin ({rejoined:.1f}s after the "
            "revocation): this run could not exercise the eviction after the outage"
        )
        print(f"\n[e2e] LiveKit back and streamer rejoined {rejoined:.2f}s after the revocation")

        # The operator retries on its own and finishes the eviction.
        await asyncio.wait_for(again.disconnected.wait(), 40)
        evicted = time.monotonic() - revoked_at
        body = await wait_for(
            lambda: finished(stack, name, "Revoked"),
            15,
            "cleanup complete (Revoked=True, Synced=True for this generation)",
        )
        print(f"[e2e] revocation -> rejoined streamer evicted after the outage: {evicted:.2f}s")
        assert condition(body, "Revoked")["reason"] == "RevokedByAdmin"
        assert body["status"]["evictedParticipants"] == 1
        assert body["status"].get("syncedPresenters", []) == []
        presenters = await room_presenters(stack, room)
        assert presenters is None or identity not in presenters, presenters
        r = post(stack, "/cast/streamer-token", {"token": key, "identity": "again"})
        assert r.status_code == 401, r.text
    finally:
        if argv is not None:
            stack.restart_component("livekit-server", argv)
            await wait_for(lambda: livekit_ready(stack), 30, "livekit-server to answer")
        await close_quietly(first)
        await close_quietly(again)


# ---- c. the operator dies just before a deadline -----------------------------------------------
async def test_operator_killed_before_expiry(stack: Stack, links: Links) -> None:
    name, key, room = await links.create(ttl_seconds=15)
    stored = link_body(stack, name)
    deadline = parse_time(stored["spec"]["expirationTime"]).timestamp()
    token = await streamer_token(stack, key)
    streamer = Participant()
    try:
        await streamer.connect(token["url"], token["token"])
        await streamer.publish_audio()
        await wait_for(lambda: link_ready(stack, name), 10, "Ready=True")

        await asyncio.sleep(max(0.0, deadline - 3 - time.time()))
        pid = int((stack.pids / "operator.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: not pid_alive(pid), 10, "the operator to die")
        killed_before = deadline - time.time()
        assert killed_before > 0.5, "the operator was killed too late to test anything"

        # Nobody acts on the deadline while the operator is down.
        await asyncio.sleep(max(0.0, deadline + 1 - time.time()))
        assert not streamer.disconnected.is_set()
        assert condition(link_body(stack, name), "Expired").get("status") != "True"

        stack.start_operator()
        restarted = time.time()
        await asyncio.wait_for(streamer.disconnected.wait(), 40)
        done = time.time()
        print(
            f"\n[e2e] operator SIGKILLed {killed_before:.1f}s before the deadline, restarted "
            f"{restarted - deadline:.1f}s after it: streamer disconnected "
            f"{done - deadline:.2f}s after the deadline ({done - restarted:.2f}s after restart)"
        )
        body = await wait_for(
            lambda: finished(stack, name, "Expired"),
            15,
            "cleanup complete (Expired=True, Synced=True)",
        )
        assert condition(body, "Expired")["reason"] == "Expired"
        assert condition(body, "Revoked")["status"] == "False"
        assert body["status"]["evictedParticipants"] == 1
        presenters = await room_presenters(stack, room)
        assert presenters is None or token["identity"] not in presenters, presenters
        # Exactly once: one LinkExpired Event, whatever the kill interrupted.
        await wait_for(lambda: events(stack, name, "LinkExpired"), 15, "a LinkExpired Event")
        await asyncio.sleep(1)
        posted = events(stack, name, "LinkExpired")
        assert len(posted) == 1 and posted[0].get("count", 1) == 1, posted
    finally:
        await close_quietly(streamer)
        stack.start_operator()  # no-op when running
