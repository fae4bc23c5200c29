"""The chart on a real apiserver: what `helm template` renders is accepted by the server."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.stack import CHART, Stack


@pytest.mark.parametrize(
    "values", ["default-values.yaml", "testbed-values.yaml", "peering-values.yaml"]
)
def test_rendered_chart_passes_server_side_dry_run(stack: Stack, values: str) -> None:
    # Its own namespace and names, so nothing collides with the release the stack installed.
    name = "dryrun-" + values.split("-")[0]
    stack.kubectl("create", "namespace", name)
    rendered = stack.helm(
        "template", name, str(CHART), "-n", name, "--set", f"fullnameOverride={name}",
        "-f", str(CHART / "ci" / values), "--set", "crds.enabled=false",
        "--kube-version", "1.35.4",
    )  # fmt: skip
    out = subprocess.run(
        [
            str(stack.bin / "kubectl"), f"--kubeconfig={stack.admin_kubeconfig}",
            "apply", "--dry-run=server", "-n", name, "-f", "-",
        ],
        input=rendered,
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (
        "deployment.apps/dryrun-cast-gatekeeper-api" in out.stdout
        or "(server dry run)" in out.stdout
    )


def test_release_installed_by_helm(stack: Stack) -> None:
    status = stack.helm("status", "cast", "-n", stack.namespace)
    assert "STATUS: deployed" in status
    crd = stack.kubectl("get", "crd", "streamlinks.cast.decentraland.org", "-o", "name")
    assert (
        crd.strip()
        == "customresourcedefinition.apiextensions.k8s.io/streamlinks.cast.decentraland.org"
    )
