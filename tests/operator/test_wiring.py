"""Registration, command line, kopf settings and metrics of the operator."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest

from cast_core.model import StreamLink
from cast_operator import main as entry
from cast_operator import metrics
from cast_operator import settings as operator_settings
from cast_operator.runtime import MEMO_KEY
from tests.operator.conftest import START, World, call, link_body

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("", "operator", "api"))}


def test_importing_handlers_registers_them_with_kopf() -> None:
    script = (
        "import json, kopf, cast_operator.handlers\n"
        "r = kopf.get_default_registry()\n"
        "print(json.dumps({k: sorted(h.id for h in getattr(r, k).get_all_handlers())"
        " for k in ('_activities', '_indexing', '_spawning', '_changing')}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=ENV, capture_output=True, text=True, check=True
    )
    ids = json.loads(out.stdout)
    assert {"configure", "close", "links", "now"} <= set(ids["_activities"])
    assert ids["_indexing"] == ["links_by_room"]
    assert ids["_spawning"] == ["aftercare", "expiry"]
    assert ids["_changing"] == [
        "cleanup-on-delete",
        "revoke/spec.revoked",
        "sync-on-create",
        "sync-on-resume",
        "sync-presenters/spec.presenters",
    ]


def test_console_entry_hands_over_to_kopf_run() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cast_operator", "--help"],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--peering" in out.stdout
    assert "--liveness" in out.stdout


def test_standalone_by_default() -> None:
    assert entry.kopf_args({}, "cast", ["--verbose"]) == [
        "run",
        "-m",
        "cast_operator",
        "--namespace=cast",
        "--standalone",
        "--liveness=http://0.0.0.0:8081/healthz",
        "--verbose",
    ]


def test_peering_with_a_stable_priority_per_pod() -> None:
    env = {"CAST_OPERATOR_PEERING": "cast", "POD_NAME": "cast-operator-7d9-abc"}
    args = entry.kopf_args({**env, "CAST_OPERATOR_LIVENESS_PORT": "9000"}, "ns")
    assert "--standalone" not in args
    assert "--peering=cast" in args
    assert "--liveness=http://0.0.0.0:9000/healthz" in args
    priority = entry.priority(env)
    assert 1 <= priority <= 10_000
    assert f"--priority={priority}" in args
    assert entry.priority(env) == priority
    others = {entry.priority({"POD_NAME": f"cast-operator-{i}"}) for i in range(20)}
    assert len(others) > 15  # replicas practically never tie (a tie freezes kopf peering)
    assert entry.priority({**env, "CAST_OPERATOR_PRIORITY": "42"}) == 42


def test_kopf_settings() -> None:
    settings = kopf.OperatorSettings()
    operator_settings.configure_kopf(settings)
    assert settings.persistence.finalizer == "cast.decentraland.org/finalizer"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert settings.posting.level == logging.WARNING
    assert settings.scanning.disabled
    assert settings.networking.request_timeout is not None
    assert 10 <= settings.networking.request_timeout <= 30
    assert settings.watching.inactivity_timeout > 0
    assert settings.watching.client_timeout is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_startup_and_cleanup_serve_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    port = free_port()
    world.rt.settings.operator_metrics_port = port
    monkeypatch.setattr(operator_settings, "build_runtime", lambda _config: world.rt)
    index: dict[str, list[StreamLink]] = {
        "room-a": [
            StreamLink.from_body(link_body("sl-aaaaaaaaaaaa-1")),
            StreamLink.from_body(link_body("sl-aaaaaaaaaaaa-2", revoked=True)),
        ],
        "room-b": [StreamLink.from_body(link_body("sl-bbbbbbbbbbbb-1", expires=START))],
    }
    memo = kopf.Memo()
    kwargs: dict[str, Any] = {"links_by_room": index}
    await call(
        operator_settings.operator_startup,
        settings=kopf.OperatorSettings(),
        memo=memo,
        logger=logging.getLogger("t"),
        **kwargs,
    )
    try:
        assert memo[MEMO_KEY] is world.rt
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            text = await response.text()
        assert response.status == 200
        assert 'cast_operator_links{state="active"} 1.0' in text
        assert 'cast_operator_links{state="expired"} 1.0' in text
        assert 'cast_operator_links{state="revoked"} 1.0' in text
        assert "cast_operator_reconcile_seconds" in text
        assert "cast_operator_livekit_errors" in text
        assert await call(operator_settings.probe_links, **kwargs) == 3
    finally:
        await call(operator_settings.operator_cleanup, memo=memo)


async def test_metrics_port_zero_disables_the_server() -> None:
    assert await metrics.start_server(0) is None
