"""The e2e tier: one real stack per session (tests/e2e/stack.py) on its own state folder and
ports, torn down by PID at the end. Everything here talks to real processes over loopback."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cast_core.keys import SigningKeys
from cast_core.model import PlaceRef, StreamLinkDraft, link_name
from tests.e2e.stack import TESTBED, Stack
from tests.support.signing import Identity

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def _testbed_ready() -> str | None:
    out = subprocess.run(
        ["bash", str(TESTBED / "build.sh"), "--print-bin-dir"], capture_output=True, text=True
    )
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="session")
def admin() -> Identity:
    return Identity()


@pytest.fixture(scope="session")
def stack(admin: Identity) -> Iterator[Stack]:
    if _testbed_ready() is None:
        message = "testbed binaries missing: run tests/e2e/testbed/build.sh (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    state = Path(tempfile.mkdtemp(prefix="cast-e2e-"))
    s = Stack(state, namespace="cast", extra_env={"CAST_RESYNC_INTERVAL": "5"})
    try:
        s.up(admin=admin.address)
        yield s
    finally:
        s.down()
        logs = state / "logs"
        print(f"\n[e2e] stack logs kept in {logs}")


class Links:
    """Create StreamLinks directly (as an admin with kubectl would) for short-TTL scenarios."""

    def __init__(self, stack: Stack) -> None:
        from cast_core.store_kube import KubeStreamLinkStore, load_api_client

        self.stack = stack
        self.store = KubeStreamLinkStore(
            stack.namespace, load_api_client(str(stack.admin_kubeconfig))
        )
        self.keys = SigningKeys.from_setting(stack.signing_key)

    async def create(
        self, ttl_seconds: float, *, place_id: str | None = None
    ) -> tuple[str, str, str]:
        """Returns (link name, streaming key, room)."""
        place_id = place_id or f"e2e-{uuid.uuid4().hex[:8]}"
        room = f"e2e-room-{uuid.uuid4().hex[:8]}"
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ttl_seconds)
        link = await self.store.create(
            StreamLinkDraft(
                name=link_name(place_id, 1),
                place=PlaceRef(place_id, "E2E place", "0,0", False),
                scene_id="bafye2e",
                realm="e2e",
                room=room,
                generated_by="0xe2e",
                expiration_time=expires,
            )
        )
        return link.name, self.keys.streaming_key(link.name, link.uid), room


@pytest.fixture
def links(stack: Stack) -> Links:
    return Links(stack)


@pytest.fixture
def kubectl(stack: Stack) -> Any:
    def run(*args: str, **kw: Any) -> str:
        return stack.kubectl(*args, **kw)

    return run
