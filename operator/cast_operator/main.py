"""`cast-operator`: kopf run with the deployment's settings taken from the environment.

Equivalent to `kopf run -m cast_operator --namespace=$CAST_NAMESPACE --standalone
--liveness=http://0.0.0.0:8081/healthz`; with CAST_OPERATOR_PEERING set, kopf peering replaces
--standalone so only the highest-priority replica is active. Extra arguments go to kopf
(e.g. --verbose, --log-format=json).
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from collections.abc import Mapping, Sequence

import kopf.cli

from cast_core.settings import Settings

DEFAULT_LIVENESS_PORT = 8081
MAX_PRIORITY = 10_000


def priority(env: Mapping[str, str]) -> int:
    """Explicit priority, else a stable hash of the pod name: replicas must differ, or kopf
    peering freezes them all (equal priorities)."""
    explicit = env.get("CAST_OPERATOR_PRIORITY", "").strip()
    if explicit:
        return int(explicit)
    pod = env.get("POD_NAME") or socket.gethostname()
    digest = hashlib.sha256(pod.encode()).digest()
    return int.from_bytes(digest[:8], "big") % MAX_PRIORITY + 1


def kopf_args(env: Mapping[str, str], namespace: str, extra: Sequence[str] = ()) -> list[str]:
    args = ["run", "-m", "cast_operator", f"--namespace={namespace}"]
    peering = env.get("CAST_OPERATOR_PEERING", "").strip()
    if peering:
        args += [f"--peering={peering}", f"--priority={priority(env)}"]
    else:
        args.append("--standalone")
    port = int(env.get("CAST_OPERATOR_LIVENESS_PORT") or DEFAULT_LIVENESS_PORT)
    args.append(f"--liveness=http://0.0.0.0:{port}/healthz")
    return [*args, *extra]


def main(argv: Sequence[str] | None = None) -> None:
    extra = sys.argv[1:] if argv is None else list(argv)
    args = kopf_args(os.environ, Settings().namespace, extra)
    kopf.cli.main(args=args, prog_name="cast-operator")
