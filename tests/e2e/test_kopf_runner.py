"""The operator in-process under kopf.testing.KopfRunner (issue 3, real tier): the same handlers
`cast-operator` loads, against the real apiserver (with the operator ServiceAccount's token, so
the chart's RBAC applies) and the real livekit-server, with real LiveKit participants.

The session's operator process is stopped meanwhile (a second standalone operator on the same
namespace would double-act) and started again afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from kopf.testing import KopfRunner

from cast_core.model import parse_time
from tests.e2e.conftest import Links
from tests.e2e.participants import Participant
from tests.e2e.polling import wait_for
from tests.e2e.stack import Stack

RUNNER_TIMEOUT = 30.0  # seconds kopf gets to stop once the `with` block ends


def link_body(stack: Stack, name: str) -> dict[str, Any]:
    raw = stack.kubectl("get", "sl", name, "-n", stack.namespace, "-o", "json")
    body: dict[str, Any] = json.loads(raw)
    return body


def condition(stack: Stack, name: str, kind: str) -> dict[str, Any]:
    for found in link_body(stack, name).get("status", {}).get("conditions", []):
        if found["type"] == kind:
            return dict(found)
    return {}


def is_ready(stack: Stack, name: str) -> bool:
    return condition(stack, name, "Ready").get("status") == "True"


async def connected_streamer(stack: Stack, key: str) -> Participant:
    r = httpx.post(
        f"{stack.api_url}/cast/streamer-token",
        json={"token": key, "identity": "streamer"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    streamer = Participant()
    await streamer.connect(r.json()["url"], r.json()["token"])
    await streamer.publish_audio()
    return streamer


@pytest.fixture
def operator_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment `cast-operator` gets, in this process; the session operator paused."""
    import kubernetes.config.kube_config

    env = {
        **stack.service_env("cast-operator"),
        "CAST_OPERATOR_METRICS_PORT": "0",
    }
    for key, value in env.items():
        if key.startswith(("CAST_", "LIVEKIT_")) or key == "KUBECONFIG":
            monkeypatch.setenv(key, value)
    # The kubernetes client reads $KUBECONFIG once, at import: this process imported it already.
    monkeypatch.setattr(
        kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", env["KUBECONFIG"]
    )
    stack.stop_process("operator")
    try:
        yield
    finally:
        stack.start_operator()


@pytest.mark.usefixtures("operator_env")
async def test_kopf_runner_disconnects_at_expiry_and_on_revocation(
    stack: Stack, links: Links
) -> None:
    ns = stack.namespace
    args = ["run", "--standalone", f"--namespace={ns}", "-m", "cast_operator"]
    figures: list[str] = []
    streamers: list[Participant] = []
    with KopfRunner(args, timeout=RUNNER_TIMEOUT) as runner:
        try:
            expiring, key, _ = await links.create(ttl_seconds=12)
            deadline = parse_time(link_body(stack, expiring)["spec"]["expirationTime"])
            revoked, revoked_key, _ = await links.create(ttl_seconds=600)
            streamer = await connected_streamer(stack, key)
            streamers.append(streamer)
            other = await connected_streamer(stack, revoked_key)
            streamers.append(other)
            # Only the in-process operator runs: Ready=True is its doing.
            for name in (expiring, revoked):
                await wait_for(partial(is_ready, stack, name), 10, f"{name} Ready=True")

            # Expiry: the daemon wakes at the deadline and evicts.
            remaining = deadline.timestamp() - time.time()
            assert remaining > 1, "the link expired before the test could watch it"
            await asyncio.wait_for(streamer.disconnected.wait(), remaining + 15)
            latency = time.time() - deadline.timestamp()
            figures.append(f"expiry deadline -> streamer disconnected: {latency:.2f}s")
            assert 0 <= latency < 5, latency
            await wait_for(
                lambda: condition(stack, expiring, "Expired").get("status") == "True",
                10,
                "Expired=True",
            )
            assert condition(stack, expiring, "Synced").get("status") == "True"
            assert not other.disconnected.is_set()  # the other link's streamer is untouched

            # Revocation with kubectl: the revoke handler evicts.
            patch = '{"spec":{"revoked":true,"revocationReason":"RevokedByAdmin"}}'
            started = time.time()
            stack.kubectl("patch", "sl", revoked, "-n", ns, "--type", "merge", "-p", patch)
            await asyncio.wait_for(other.disconnected.wait(), 15)
            latency = time.time() - started
            figures.append(f"kubectl revoke -> streamer disconnected: {latency:.2f}s")
            assert latency < 5, latency
            await wait_for(
                lambda: condition(stack, revoked, "Revoked").get("reason") == "RevokedByAdmin",
                10,
                "Revoked=True (RevokedByAdmin)",
            )
            body = link_body(stack, revoked)
            assert body["status"]["evictedParticipants"] == 1
        finally:
            for participant in streamers:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(participant.close(), 5)

    assert runner.exit_code == 0, runner.output[-3000:]
    assert runner.exception is None
    print("\n" + "\n".join(f"[e2e] KopfRunner: {line}" for line in figures))
