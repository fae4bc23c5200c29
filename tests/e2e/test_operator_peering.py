"""Peering (issue 3): two operator processes with distinct priorities on one namespace never both
act; when the active one dies, the other takes over within kopf's peering lifetime.

A second helm release in its own namespace renders what peering needs (operator.replicas > 1):
the KopfPeering object and the peering RBAC of the operator ServiceAccount. The two operators run
as local processes with that ServiceAccount's token, like the session's operator does."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cast_core.store_kube import KubeStreamLinkStore, load_api_client
from tests.e2e.conftest import Links
from tests.e2e.polling import wait_for
from tests.e2e.stack import CHART, Stack, free_port, pid_alive

RELEASE = "castp"
PEERING = "cast"  # the chart's default KopfPeering name: the fullname (testbed-values: "cast")
HIGH, LOW = "peer-high", "peer-low"
TAKEOVER_BOUND = 80.0  # kopf's default peering lifetime is 60 s after the last keep-alive


class Peering:
    """A second release of the chart with peering on, in its own namespace."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.namespace = f"cast-peering-{uuid.uuid4().hex[:6]}"
        self.kubeconfig = stack.state / f"{self.namespace}-operator.kubeconfig"

    def install(self) -> None:
        tb = self.stack.testbed_env
        self.stack.kubectl("create", "namespace", self.namespace)
        self.stack.helm(
            "install", RELEASE, str(CHART), "-n", self.namespace,
            "-f", str(CHART / "ci" / "testbed-values.yaml"),
            "--set", "operator.replicas=2",
            # Cluster-scoped objects belong to the session's release already.
            "--set", "crds.enabled=false",
            "--set", "rbac.aggregateClusterRoles=false",
            "--set", f"livekit.url={tb['LIVEKIT_URL']}",
            "--set", f"livekit.apiKey={tb['LIVEKIT_API_KEY']}",
            "--set", f"livekit.apiSecret={tb['LIVEKIT_API_SECRET']}",
            "--set", f"linkSigningKey.keys[0]={self.stack.signing_key}",
        )  # fmt: skip
        self.stack.testbed(
            "sa-kubeconfig", str(self.stack.state), self.namespace, "cast-operator",
            str(self.kubeconfig),
        )  # fmt: skip

    def uninstall(self) -> None:
        self.stack.helm("uninstall", RELEASE, "-n", self.namespace)

    def start(self, name: str, priority: int) -> int:
        env = {
            **self.stack.service_env("cast-operator"),
            "KUBECONFIG": str(self.kubeconfig),
            "CAST_NAMESPACE": self.namespace,
            "CAST_OPERATOR_PEERING": PEERING,
            "CAST_OPERATOR_PRIORITY": str(priority),
            "CAST_OPERATOR_LIVENESS_PORT": str(free_port()),
            "CAST_OPERATOR_METRICS_PORT": "0",
        }
        argv = [sys.executable, "-m", "cast_operator", "--verbose"]
        return self.stack.start_process(name, argv, env)

    def log(self, name: str) -> str:
        return (self.stack.logs / f"{name}.log").read_text(errors="replace")

    def peers(self) -> dict[str, dict[str, Any]]:
        raw = self.stack.kubectl("get", "kopfpeering", PEERING, "-n", self.namespace, "-o", "json")
        status: dict[str, dict[str, Any]] = json.loads(raw).get("status") or {}
        return status

    def link(self, name: str) -> dict[str, Any]:
        raw = self.stack.kubectl("get", "sl", name, "-n", self.namespace, "-o", "json")
        body: dict[str, Any] = json.loads(raw)
        return body

    def condition(self, name: str, kind: str) -> str | None:
        for found in self.link(name).get("status", {}).get("conditions", []):
            if found["type"] == kind:
                return str(found["status"])
        return None

    def ready(self, name: str) -> bool:
        return self.condition(name, "Ready") == "True"

    def links(self) -> Links:
        links = Links(self.stack)
        links.store = KubeStreamLinkStore(
            self.namespace, load_api_client(str(self.stack.admin_kubeconfig))
        )
        return links


@pytest.fixture
def peering(stack: Stack) -> Iterator[Peering]:
    p = Peering(stack)
    p.install()
    try:
        yield p
    finally:
        for name in (HIGH, LOW):
            stack.stop_process(name)
        p.uninstall()


def handled(log: str, namespace: str, name: str) -> bool:
    """kopf prefixes every per-object log line with [namespace/name]."""
    return f"[{namespace}/{name}]" in log


async def test_only_the_highest_priority_operator_acts(stack: Stack, peering: Peering) -> None:
    ns = peering.namespace
    # The chart rendered the KopfPeering object and granted the operator SA access to it.
    assert peering.peers() == {}
    can = stack.kubectl(
        "auth", "can-i", "patch", "kopfpeerings.kopf.dev", "-n", ns,
        f"--as=system:serviceaccount:{ns}:cast-operator",
        check=False,
    )  # fmt: skip
    assert can.strip() == "yes"

    high = peering.start(HIGH, 2)
    await wait_for(
        lambda: [p for p in peering.peers().values() if p.get("priority") == 2],
        30,
        "the priority-2 operator's keep-alive in the KopfPeering",
    )
    peering.start(LOW, 1)
    # With --peering kopf starts paused and only resumes once the KopfPeering shows no live
    # peer of a higher priority: the low one never gets to act.
    await wait_for(
        lambda: sorted(p["priority"] for p in peering.peers().values()) == [1, 2],
        30,
        "the priority-1 operator's keep-alive in the KopfPeering",
    )
    await wait_for(
        lambda: "Pausing the watch-stream for streamlinks" in peering.log(LOW),
        10,
        "the priority-1 operator's StreamLink watch to be paused",
    )

    links = peering.links()
    first, _, _ = await links.create(ttl_seconds=600)
    await wait_for(lambda: peering.ready(first), 20, f"{first} Ready=True")
    await asyncio.sleep(2)  # give a wrongly active peer time to show up in its log
    assert handled(peering.log(HIGH), ns, first)
    assert not handled(peering.log(LOW), ns, first)
    assert f"[{ns}/" not in peering.log(LOW), "the paused operator touched a resource"
    assert "Resuming operations" not in peering.log(LOW)

    # The active operator crashes: no goodbye in the KopfPeering, so the other one waits for
    # its keep-alive to run out, then resumes.
    os.kill(high, signal.SIGKILL)
    killed = time.monotonic()
    await wait_for(lambda: not pid_alive(high), 10, "the priority-2 operator to die")
    second, _, _ = await links.create(ttl_seconds=600)
    await wait_for(lambda: peering.ready(second), TAKEOVER_BOUND, f"{second} Ready=True")
    takeover = time.monotonic() - killed
    lastseen = [p["lastseen"] for p in peering.peers().values() if p.get("priority") == 2]
    print(f"\n[e2e] peering takeover after SIGKILL of the active operator: {takeover:.1f}s")
    assert "Resuming operations after the pause" in peering.log(LOW)
    assert handled(peering.log(LOW), ns, second)
    assert not handled(peering.log(HIGH), ns, second)
    # The survivor cleaned the dead peer out of the KopfPeering.
    await wait_for(
        lambda: [p["priority"] for p in peering.peers().values()] == [1],
        15,
        f"the dead peer to be removed (was last seen {lastseen})",
    )

    # The higher priority comes back: the low one steps aside again.
    low_mark = len(peering.log(LOW))
    high_mark = len(peering.log(HIGH))
    peering.start(HIGH, 2)
    await wait_for(
        lambda: "Pausing operations in favour of" in peering.log(LOW)[low_mark:],
        30,
        "the priority-1 operator to pause for the returning priority-2 one",
    )
    third, _, _ = await links.create(ttl_seconds=15)  # expires after the hand-over below
    await wait_for(lambda: peering.ready(third), 20, f"{third} Ready=True")
    await asyncio.sleep(2)
    assert handled(peering.log(HIGH)[high_mark:], ns, third)
    assert not handled(peering.log(LOW), ns, third)

    # A graceful stop (rolling update) removes the peer from the KopfPeering on its way out,
    # so the hand-over is immediate.
    low_mark = len(peering.log(LOW))
    started = time.monotonic()
    stack.stop_process(HIGH)
    fourth, _, _ = await links.create(ttl_seconds=600)
    await wait_for(lambda: peering.ready(fourth), 20, f"{fourth} Ready=True")
    handover = time.monotonic() - started
    print(f"[e2e] peering hand-over after SIGTERM of the active operator: {handover:.1f}s")
    assert "Resuming operations after the pause" in peering.log(LOW)[low_mark:]
    assert handled(peering.log(LOW), ns, fourth)
    assert handover < 15
    # Nothing is lost in the hand-over: the link the stopped operator had been watching still
    # expires on time, now by the other one.
    await wait_for(lambda: peering.condition(third, "Expired") == "True", 25, f"{third} expired")
    assert handled(peering.log(LOW)[low_mark:], ns, third)
