"""Benchmark of the hot routes against a bare FastAPI echo endpoint, in one process tree.

    python bench/bench_routes.py [--seconds 5] [--concurrency 32]

Starts two single-worker uvicorn servers on 127.0.0.1 (the Cast API with an in-memory store, a
fake LiveKit and a static directory; and a bare FastAPI app whose POST /echo returns its JSON
body), drives each route from a separate load process with keep-alive connections, and prints
requests/s, p50/p99 latency and the ratio to the echo baseline. Not a test: figures go in notes.
"""

# No `from __future__ import annotations`: FastAPI must resolve the echo route's Request hint.

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIGNING_KEY = "bench-signing-key-" + "x" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- servers ---------------------------------------------------------------------------------
def serve_echo(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(json.loads(await request.body()))

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_cast(port: int, key_file: str) -> None:
    import uvicorn

    from cast_api.main import create_app
    from cast_core.clock import SystemClock
    from cast_core.fakes import FakeRoomAdmin
    from cast_core.model import PlaceRef, StreamLinkDraft, link_name
    from cast_core.places_static import StaticPlaceDirectory
    from cast_core.settings import Settings
    from cast_core.store_memory import MemoryStreamLinkStore

    settings = Settings(
        CAST_LINK_SIGNING_KEY=SIGNING_KEY,
        LIVEKIT_API_KEY="devkey",
        LIVEKIT_API_SECRET="bench-livekit-secret-" + "y" * 20,
        CAST_STORE="memory",
        CAST_PLACES_BACKEND="static",
    )
    clock = SystemClock()
    store = MemoryStreamLinkStore("bench", clock)
    directory = StaticPlaceDirectory(
        [{"id": "bench-place", "title": "Bench", "base_position": "1,1", "positions": ["1,1"]}]
    )
    from datetime import timedelta

    link = asyncio.run(
        store.create(
            StreamLinkDraft(
                name=link_name("bench-place", 1),
                place=PlaceRef("bench-place", "Bench", "1,1", False),
                scene_id="bafybench",
                realm="bench",
                room="bench:room",
                generated_by="0xbench",
                expiration_time=clock.now() + timedelta(days=1),
            )
        )
    )
    key = settings.signing_keys().streaming_key(link.name, link.uid)
    Path(key_file).write_text(key)
    app = create_app(settings, store=store, rooms=FakeRoomAdmin(), directory=directory, clock=clock)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---- load ------------------------------------------------------------------------------------
async def drive(
    url: str, method: str, body: dict[str, Any] | None, seconds: float, concurrency: int
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(deadline: float, record: bool) -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.request(method, url, data=payload, headers=headers) as r:
                    await r.read()
                    if record:
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                if record:
                    latencies.append(time.perf_counter() - start)

        warm = time.perf_counter() + 1.0
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        begin = time.perf_counter()
        await asyncio.gather(*(worker(begin + seconds, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - begin
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "statuses": statuses,
    }


def load_main(spec: str) -> None:
    job = json.loads(spec)
    result = asyncio.run(
        drive(job["url"], job["method"], job.get("body"), job["seconds"], job["concurrency"])
    )
    print(json.dumps(result))


# ---- orchestration ---------------------------------------------------------------------------
def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start within {timeout}s")


def run_load(job: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--load", json.dumps(job)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve", choices=["echo", "cast"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--key-file")
    parser.add_argument("--load")
    args = parser.parse_args()
    if args.serve == "echo":
        serve_echo(args.port)
        return
    if args.serve == "cast":
        serve_cast(args.port, args.key_file)
        return
    if args.load:
        load_main(args.load)
        return

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "api")])}
    echo_port, cast_port = free_port(), free_port()
    key_file = ROOT / ".bench-key"
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--serve", "echo", "--port", str(echo_port)], env=env
        ),
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                "cast",
                "--port",
                str(cast_port),
                "--key-file",
                str(key_file),
            ],
            env=env,
        ),
    ]
    try:
        wait_port(echo_port)
        wait_port(cast_port)
        key = key_file.read_text()
        common = {"seconds": args.seconds, "concurrency": args.concurrency}
        jobs: dict[str, dict[str, Any]] = {
            "echo (baseline)": {
                "url": f"http://127.0.0.1:{echo_port}/echo",
                "method": "POST",
                "body": {"location": "1,1", "identity": "bench"},
            },
            "watcher-token": {
                "url": f"http://127.0.0.1:{cast_port}/cast/watcher-token",
                "method": "POST",
                "body": {"location": "1,1", "identity": "bench"},
            },
            "streamer-token": {
                "url": f"http://127.0.0.1:{cast_port}/cast/streamer-token",
                "method": "POST",
                "body": {"token": key, "identity": "bench"},
            },
            "stream-info": {
                "url": f"http://127.0.0.1:{cast_port}/cast/stream-info/{key}",
                "method": "GET",
            },
        }
        print(
            f"1 uvicorn worker per server, {args.concurrency} keep-alive clients, "
            f"{args.seconds:.0f}s per route after 1s warm-up, load from a separate process"
        )
        print(f"{'route':<18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'ratio':>8}  statuses")
        baseline = None
        for name, job in jobs.items():
            result = run_load({**job, **common})
            baseline = baseline or result["rps"]
            print(
                f"{name:<18}{result['rps']:>10.0f}{result['p50_ms']:>10.2f}"
                f"{result['p99_ms']:>10.2f}{result['rps'] / baseline:>8.2f}  {result['statuses']}"
            )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=10)
        key_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
