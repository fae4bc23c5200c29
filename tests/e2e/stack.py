"""The local stack: testbed (etcd, kube-apiserver, controller manager, livekit-server) + the chart's
CRD/RBAC/ServiceAccounts installed with helm + the operator and the API as local processes, each
with a kubeconfig holding its own ServiceAccount token, so the chart's RBAC is what they get.

    python -m tests.e2e.stack up      # `make up`: idempotent, prints what runs and an example
    python -m tests.e2e.stack down    # `make down`: stops everything by PID

The e2e tests use the same class with their own state folder and ports.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTBED = ROOT / "tests" / "e2e" / "testbed"
CHART = ROOT / "deploy" / "helm" / "cast-gatekeeper"
RELEASE = "cast"
# Settings the processes read that a user may pass through `make up`.
PASSTHROUGH_PREFIXES = ("CAST_",)
PASSTHROUGH = (
    "CAST2_URL",
    "SCENE_ROOM_PREFIX",
    "WORLD_ROOM_PREFIX",
    "PLACES_API_URL",
    "LAMBDAS_URL",
    "WORLD_CONTENT_URL",
    "CATALYST_URL",
)
# Stack-internal variables that are not service settings.
NOT_PASSED = ("CAST_TB_", "CAST_TESTBED_", "CAST_UP_")


def say(message: str) -> None:
    print(f"[stack {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, _, value = line.partition("=")
        parts = shlex.split(value) if value else [""]
        values[key] = parts[0] if parts else ""
    return values


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0): look at its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop_pid(pid: int, timeout: float = 15.0) -> None:
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.05)


@dataclass
class Stack:
    state: Path
    namespace: str = "cast"
    api_port: int = 0
    signing_key: str = "testbed-signing-key-0123456789abcdef0123456789"
    extra_env: Mapping[str, str] = field(default_factory=dict)

    # ---- paths ---------------------------------------------------------------------------
    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    def kubeconfig_for(self, sa: str) -> Path:
        return self.state / f"{sa}.kubeconfig"

    @property
    def testbed_env(self) -> dict[str, str]:
        return parse_env_file(self.state / "testbed.env")

    @property
    def bin(self) -> Path:
        return Path(self.testbed_env["TESTBED_BIN"])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # ---- helpers -------------------------------------------------------------------------
    def testbed(self, *args: str) -> str:
        out = subprocess.run(
            ["bash", str(TESTBED / "testbed.sh"), *args],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        return out.stdout

    def kubectl(self, *args: str, kubeconfig: Path | None = None, check: bool = True) -> str:
        out = subprocess.run(
            [
                str(self.bin / "kubectl"),
                f"--kubeconfig={kubeconfig or self.admin_kubeconfig}",
                *args,
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def helm(self, *args: str) -> str:
        out = subprocess.run(
            [str(self.bin / "helm"), f"--kubeconfig={self.admin_kubeconfig}", *args],
            check=False,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args[:2])} failed: {out.stderr.strip()}")
        return out.stdout

    def service_env(self, sa: str) -> dict[str, str]:
        tb = self.testbed_env
        env = {
            k: v
            for k, v in os.environ.items()
            if (k.startswith(PASSTHROUGH_PREFIXES) or k in PASSTHROUGH)
            and not k.startswith(NOT_PASSED)
        }
        env.update(
            {
                "PATH": os.environ.get("PATH", ""),
                "HOME": os.environ.get("HOME", "/tmp"),
                "PYTHONPATH": os.pathsep.join(
                    [str(ROOT), str(ROOT / "api"), str(ROOT / "operator")]
                ),
                "KUBECONFIG": str(self.kubeconfig_for(sa)),
                "CAST_NAMESPACE": self.namespace,
                "CAST_LINK_SIGNING_KEY": self.signing_key,
                "LIVEKIT_URL": tb["LIVEKIT_URL"],
                "LIVEKIT_API_KEY": tb["LIVEKIT_API_KEY"],
                "LIVEKIT_API_SECRET": tb["LIVEKIT_API_SECRET"],
            }
        )
        if not env.get("CAST_PLACES_FILE"):
            env["CAST_PLACES_FILE"] = str(self.state / "places.yaml")
        env.update(self.extra_env)
        return env

    # ---- processes -----------------------------------------------------------------------
    def _pid(self, name: str) -> int | None:
        file = self.pids / f"{name}.pid"
        if not file.exists():
            return None
        pid = int(file.read_text().strip() or 0)
        return pid if pid and pid_alive(pid) else None

    def start_process(self, name: str, argv: list[str], env: dict[str, str]) -> int:
        if (pid := self._pid(name)) is not None:
            return pid
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                start_new_session=True,
            )
        (self.pids / f"{name}.pid").write_text(str(proc.pid))
        return proc.pid

    def stop_process(self, name: str) -> None:
        pid = self._pid(name)
        if pid is not None:
            stop_pid(pid)
            say(f"stopped {name} (pid {pid})")
        (self.pids / f"{name}.pid").unlink(missing_ok=True)

    def start_operator(self, name: str = "operator", extra: Mapping[str, str] = {}) -> int:
        env = {
            **self.service_env("cast-operator"),
            "CAST_OPERATOR_METRICS_PORT": "0",
            "CAST_OPERATOR_LIVENESS_PORT": str(free_port()),
            **extra,
        }
        return self.start_process(name, [sys.executable, "-m", "cast_operator", "--verbose"], env)

    def start_api(self) -> int:
        if not self.api_port:
            self.api_port = free_port()
        env = {
            **self.service_env("cast-api"),
            "CAST_API_HOST": "127.0.0.1",
            "CAST_API_PORT": str(self.api_port),
        }
        (self.state / "api.port").write_text(str(self.api_port))
        pid = self.start_process("api", [sys.executable, "-m", "cast_api.main"], env)
        self.wait_http(f"{self.api_url}/readyz", "api")
        return pid

    def wait_http(self, url: str, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self._pid(name) is None:
                break
            time.sleep(0.2)
        tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{name} did not become ready at {url}; last log lines:\n{tail}")

    # ---- component faults (e2e) ------------------------------------------------------------
    def component_pid(self, name: str) -> int:
        return int((self.pids / f"{name}.pid").read_text())

    def kill_component(self, name: str) -> list[str]:
        """Stop a testbed component by PID; returns its command line for restart_component."""
        pid = self.component_pid(name)
        argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]
        stop_pid(pid)
        return argv

    def restart_component(self, name: str, argv: list[str]) -> None:
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (self.pids / f"{name}.pid").write_text(str(proc.pid))

    # ---- lifecycle -----------------------------------------------------------------------
    def write_places(self, admin: str) -> None:
        places = {
            "places": [
                {
                    "id": "demo-plaza",
                    "title": "Demo Plaza",
                    "base_position": "0,0",
                    "positions": ["0,0", "0,1", "1,0", "1,1"],
                    "owner": admin,
                },
                {
                    "id": "demo-world",
                    "title": "Demo World",
                    "world": True,
                    "world_name": "demo.dcl.eth",
                    "base_position": "0,0",
                    "positions": ["0,0"],
                    "owner": admin,
                },
            ]
        }
        # JSON is valid YAML, and keeps 0x… addresses strings.
        (self.state / "places.yaml").write_text(json.dumps(places, indent=2))

    def up(self, admin: str) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        say(f"starting the testbed in {self.state}")
        self.testbed("start", str(self.state))
        tb = self.testbed_env
        if not self.kubectl("get", "namespace", self.namespace, "--ignore-not-found", "-o", "name"):
            self.kubectl("create", "namespace", self.namespace)
        say("installing the chart (CRD, RBAC, ServiceAccounts, Secrets) with helm")
        self.helm(
            "upgrade", "--install", RELEASE, str(CHART), "-n", self.namespace,
            "-f", str(CHART / "ci" / "testbed-values.yaml"),
            "--set", f"livekit.url={tb['LIVEKIT_URL']}",
            "--set", f"livekit.apiKey={tb['LIVEKIT_API_KEY']}",
            "--set", f"livekit.apiSecret={tb['LIVEKIT_API_SECRET']}",
            "--set", f"linkSigningKey.keys[0]={self.signing_key}",
        )  # fmt: skip
        self.kubectl("wait", "--for=condition=Established", "crd/streamlinks.cast.decentraland.org")
        for sa in ("cast-operator", "cast-api"):
            self.testbed(
                "sa-kubeconfig", str(self.state), self.namespace, sa, str(self.kubeconfig_for(sa))
            )
        if not os.environ.get("CAST_PLACES_FILE"):
            self.write_places(admin)
        say("starting the operator and the API")
        self.start_operator()
        self.start_api()

    def down(self) -> None:
        for name in ("api", "operator", "operator-b"):
            self.stop_process(name)
        if (self.state / "testbed.env").exists() or (self.state / "ports.env").exists():
            self.testbed("stop", str(self.state))


# ---- make up / make down ---------------------------------------------------------------------
UP_STATE = ROOT / ".cast-up"
UP_ENV = ROOT / ".cast-up.env"


def _demo_identity(state: Path) -> object:
    from eth_account import Account

    key_file = state / "demo-admin.key"
    if not key_file.exists():
        state.mkdir(parents=True, exist_ok=True)
        key_file.write_text(Account.create().key.hex())
        key_file.chmod(0o600)
    return Account.from_key(key_file.read_text().strip())


def _demo_link(stack: Stack, owner: object) -> dict[str, object]:
    import httpx

    from tests.support.signing import Identity, scene_metadata, signed_headers

    identity = Identity(owner=owner)  # type: ignore[arg-type]
    headers = signed_headers(
        identity,
        "GET",
        "/cast/generate-stream-link",
        scene_metadata(scene_id="bafydemoscene", server_name="localrealm", parcel="0,0"),
        now=__import__("datetime").datetime.now(__import__("datetime").UTC),
    )
    response = httpx.get(f"{stack.api_url}/cast/generate-stream-link", headers=headers, timeout=30)
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def cmd_up() -> None:
    port = int(os.environ.get("CAST_API_PORT") or 0)
    if (UP_STATE / "api.port").exists() and not port:
        port = int((UP_STATE / "api.port").read_text())
    stack = Stack(UP_STATE, api_port=port or (8080 if _port_free(8080) else free_port()))
    owner = _demo_identity(UP_STATE)
    stack.up(admin=str(owner.address))  # type: ignore[attr-defined]
    tb = stack.testbed_env
    link = _demo_link(stack, owner) if not os.environ.get("CAST_PLACES_FILE") else None
    UP_ENV.write_text(
        "\n".join(
            [
                f"export CAST_API_URL={stack.api_url}",
                f"export LIVEKIT_URL={tb['LIVEKIT_URL']}",
                f"export LIVEKIT_API_KEY={tb['LIVEKIT_API_KEY']}",
                f"export LIVEKIT_API_SECRET={tb['LIVEKIT_API_SECRET']}",
                f"export KUBECONFIG={stack.admin_kubeconfig}",
                # kubectl and helm of the testbed's version first on PATH.
                f'export PATH="{stack.bin}:$PATH"',
                "",
            ]
        )
    )
    UP_ENV.chmod(0o600)
    print(
        f"""
cast-gatekeeper is running (state, logs and PIDs in {UP_STATE}):
  API          {stack.api_url}   (log: {stack.logs / "api.log"})
  operator     kopf, namespace {stack.namespace}   (log: {stack.logs / "operator.log"})
  LiveKit      {tb["LIVEKIT_URL"]}
  apiserver    KUBECONFIG={stack.admin_kubeconfig}
Environment for your shell: source {UP_ENV.name}
"""
    )
    if link is not None:
        key = str(link["streamingKey"])
        from cast_core.keys import link_name_from_key

        link_name = link_name_from_key(key)
        print(
            f"""A demo link for place "Demo Plaza" (parcel 0,0) was generated by a local admin key:
  source .cast-up.env
  kubectl get sl -n {stack.namespace}
  curl -s $CAST_API_URL/cast/stream-info/{key}
  curl -s -XPOST $CAST_API_URL/cast/streamer-token -d '{{"token":"{key}","identity":"me"}}'
  curl -s -XPOST $CAST_API_URL/cast/watcher-token -d '{{"location":"0,0","identity":"viewer"}}'
  kubectl patch sl -n {stack.namespace} {link_name} \\
    --type merge -p '{{"spec":{{"revoked":true,"revocationReason":"RevokedByAdmin"}}}}'
Stop everything with: make down
"""
        )


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def cmd_down() -> None:
    if not UP_STATE.exists():
        say("nothing to stop")
        return
    Stack(UP_STATE).down()
    UP_ENV.unlink(missing_ok=True)
    say("stopped")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("up", "down"):
        raise SystemExit("usage: python -m tests.e2e.stack up|down")
    {"up": cmd_up, "down": cmd_down}[sys.argv[1]]()
