"""The Helm chart in deploy/helm/cast-gatekeeper.

Two tiers in one file:
- pure Python (always run): values.yaml and every ci/*-values.yaml validate against
  values.schema.json, every value is documented (values.yaml `## @param`, README table, schema),
  the chart's CRD copy equals deploy/crds/.
- helm (skipped with a reason when no helm binary is found): `helm lint` and `helm template`
  for the defaults and every ci values file, then assertions on the rendered manifests: RBAC,
  security contexts, probes, operator modes, PDB/HPA, Secrets, the CRD.

helm is found through $HELM, else the testbed's bin dir (`tests/e2e/testbed/build.sh
--print-bin-dir`), else PATH.
"""

from __future__ import annotations

import ast
import base64
import copy
import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "cast-gatekeeper"
SOURCE_CRDS = REPO / "deploy" / "crds"
CHART_CRDS = CHART / "files" / "crds"
CI_DIR = CHART / "ci"
CI_FILES = sorted(CI_DIR.glob("*-values.yaml"))
NAMESPACE = "cast-test"
RELEASE = "rel"
# helm's built-in default Kubernetes version depends on its build flags; pin a supported one.
KUBE_VERSION = "1.35.0"
UID = 10001

Doc = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def merge_values(base: Doc, override: Doc | None) -> Doc:
    """Helm's coalescing for user values: maps merge, null deletes, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@functools.cache
def schema() -> Doc:
    data: Doc = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    return data


@functools.cache
def default_values() -> Doc:
    data: Doc = load_yaml(CHART / "values.yaml")
    return data


def schema_errors(values: Doc) -> list[str]:
    validator = jsonschema.Draft7Validator(schema())
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(values)
    ]


def documented_params() -> dict[str, str]:
    params: dict[str, str] = {}
    for line in (CHART / "values.yaml").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s*## @param (\S+) (.+)$", line)
        if m:
            params[m.group(1)] = m.group(2).strip()
    return params


def value_paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Every key path of values.yaml (maps are descended, lists and scalars are leaves)."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from value_paths(value, path)


def settings_aliases() -> set[str]:
    """Env var names of cast_core.settings.Settings (validation_alias), read without importing."""
    tree = ast.parse((REPO / "cast_core" / "settings.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "validation_alias":
            for const in ast.walk(node.value):
                if isinstance(const, ast.Constant) and isinstance(const.value, str):
                    names.add(const.value)
    return names


# --------------------------------------------------------------------------- pure Python


def test_ci_values_files_present() -> None:
    names = {p.name for p in CI_FILES}
    assert {
        "default-values.yaml",
        "peering-values.yaml",
        "full-values.yaml",
        "testbed-values.yaml",
    } <= names


def test_schema_is_valid_draft7() -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    assert schema()["additionalProperties"] is False


def test_values_yaml_matches_schema() -> None:
    assert schema_errors(default_values()) == []


@pytest.mark.parametrize("ci_file", CI_FILES, ids=lambda p: p.name)
def test_ci_values_match_schema(ci_file: Path) -> None:
    assert schema_errors(merge_values(default_values(), load_yaml(ci_file))) == []


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"api": {"replicas": -1}}, "api.replicas"),
        ({"api": {"replicsa": 2}}, "api"),
        ({"unknownTopLevel": True}, "<root>"),
        ({"linkSigningKey": {"keys": ["too-short"]}}, "linkSigningKey.keys.0"),
        ({"linkSigningKey": {"keys": ["a" * 32 + "," + "b" * 32]}}, "linkSigningKey.keys.0"),
        ({"livekit": {"url": "ftp://livekit"}}, "livekit.url"),
        ({"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy"),
        ({"places": {"backend": "ldap"}}, "places.backend"),
        ({"places": {"static": {"places": [{"title": "no id"}]}}}, "places.static.places.0"),
        ({"places": {"static": {"places": [{"id": "p", "owner": 12}]}}}, "places"),
        ({"config": {"linkTTL": 10}}, "config.linkTTL"),
        ({"operator": {"healthPort": 70000}}, "operator.healthPort"),
    ],
)
def test_schema_rejects_bad_values(override: Doc, where: str) -> None:
    errors = schema_errors(merge_values(default_values(), override))
    assert errors, f"schema accepted {override}"
    assert any(e.startswith(where) for e in errors), errors


def test_every_value_is_documented() -> None:
    params = documented_params()
    paths = set(value_paths(default_values()))
    missing = sorted(
        p
        for p in paths
        if not any(p == d or p.startswith(d + ".") for d in params)
        # a map whose every child is documented needs no line of its own
        and not any(child.startswith(p + ".") for child in params)
    )
    assert missing == [], f"values without a `## @param` line: {missing}"
    unknown = sorted(set(params) - paths)
    assert unknown == [], f"`## @param` lines for keys not in values.yaml: {unknown}"


def test_schema_describes_every_documented_value() -> None:
    for path in documented_params():
        node: Doc = schema()
        for part in path.split("."):
            assert part in node.get("properties", {}), f"{path} missing from values.schema.json"
            node = node["properties"][part]


def test_readme_values_table_lists_every_value() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    params = set(documented_params())
    assert sorted(params - rows) == [], "values missing from the README table"
    assert sorted(rows - params) == [], "README table rows for values that do not exist"


def test_crd_copy_is_identical_to_source() -> None:
    sources = sorted(p.name for p in SOURCE_CRDS.glob("*.yaml"))
    copies = sorted(p.name for p in CHART_CRDS.glob("*.yaml"))
    assert sources, "no CRDs in deploy/crds"
    assert copies == sources, "run deploy/helm/sync-crds.sh"
    for name in sources:
        assert (CHART_CRDS / name).read_bytes() == (SOURCE_CRDS / name).read_bytes(), (
            f"files/crds/{name} differs from deploy/crds/{name}: run deploy/helm/sync-crds.sh"
        )


def test_sync_crds_check_mode_agrees() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "deploy" / "helm" / "sync-crds.sh"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- helm


def _find_helm() -> str | None:
    env = os.environ.get("HELM")
    if env:
        return shutil.which(env) or (env if os.access(env, os.X_OK) else None)
    build = REPO / "tests" / "e2e" / "testbed" / "build.sh"
    if build.is_file():
        try:
            # Prints the bin dir (exit 1 if some testbed binary is still missing; helm may not be).
            out = subprocess.run(
                ["bash", str(build), "--print-bin-dir"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            candidate = Path(out.splitlines()[-1]) / "helm"
            if os.access(candidate, os.X_OK):
                return str(candidate)
    return shutil.which("helm")


@functools.cache
def helm_binary() -> str | None:
    return _find_helm()


@pytest.fixture(scope="session")
def helm() -> str:
    binary = helm_binary()
    if binary is None:
        if os.environ.get("HELM"):
            pytest.fail(f"HELM={os.environ['HELM']} is not an executable")
        pytest.skip(
            "helm not found: set HELM, build the testbed (tests/e2e/testbed/build.sh) "
            "or put helm on PATH"
        )
    return binary


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)


@functools.cache
def _render(helm: str, values_file: str | None, sets: tuple[str, ...], include_crds: bool) -> str:
    args = [
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
    ]
    if values_file:
        args += ["-f", values_file]
    for s in sets:
        args += ["--set", s]
    if include_crds:
        args.append("--include-crds")
    result = run_helm(helm, *args)
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return result.stdout


def render(
    helm: str, values_file: Path | None = None, *sets: str, include_crds: bool = False
) -> list[Doc]:
    text = _render(helm, str(values_file) if values_file else None, tuple(sets), include_crds)
    return [d for d in yaml.safe_load_all(text) if d]


def ci(name: str) -> Path:
    return CI_DIR / f"{name}-values.yaml"


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Doc], kind: str, name_suffix: str = "") -> Doc:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {len(found)}"
    return found[0]


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def container(workload: Doc) -> Doc:
    containers: list[Doc] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(ctr: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in ctr.get("env", [])}


def rules(role: Doc) -> list[Doc]:
    out: list[Doc] = role.get("rules") or []
    return out


def grants(role: Doc) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules(role)
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


ALL_VALUES: list[Path | None] = [None, *CI_FILES]
VALUES_IDS = ["chart-defaults", *[p.name for p in CI_FILES]]


@pytest.mark.parametrize("values_file", ALL_VALUES, ids=VALUES_IDS)
def test_helm_lint(helm: str, values_file: Path | None) -> None:
    args = ["lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION]
    if values_file:
        args += ["-f", str(values_file)]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values_file", ALL_VALUES, ids=VALUES_IDS)
def test_helm_template_renders_valid_objects(helm: str, values_file: Path | None) -> None:
    docs = render(helm, values_file)
    assert docs
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), doc
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"]), doc[
            "metadata"
        ]["name"]
        assert len(doc["metadata"]["name"]) <= 63 or doc["kind"] == "CustomResourceDefinition"
    kinds = {d["kind"] for d in docs}
    assert {"ServiceAccount", "Role", "RoleBinding", "Service", "Deployment"} <= kinds
    assert "CustomResourceDefinition" in kinds


@pytest.mark.parametrize("values_file", ALL_VALUES, ids=VALUES_IDS)
def test_namespaced_objects_live_in_the_release_namespace(
    helm: str, values_file: Path | None
) -> None:
    cluster_scoped = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for doc in render(helm, values_file):
        if doc["kind"] in cluster_scoped:
            assert "namespace" not in doc["metadata"]
        elif doc["metadata"]["name"].endswith("-extra"):  # full-values extraObjects sample
            continue
        else:
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]


def test_schema_violation_fails_helm_template(helm: str) -> None:
    result = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "api.replicas=-1",
    )
    assert result.returncode != 0
    assert "schema" in result.stderr and "/api/replicas" in result.stderr, result.stderr


# ---- RBAC


def test_api_role_is_least_privilege(helm: str) -> None:
    role = one(render(helm), "Role", "-api")
    assert grants(role) == {
        ("cast.decentraland.org", "streamlinks", verb)
        for verb in ("get", "list", "watch", "create", "patch")
    }


@pytest.mark.parametrize("values_file", ALL_VALUES, ids=VALUES_IDS)
def test_api_role_never_touches_status_or_secrets(helm: str, values_file: Path | None) -> None:
    role = one(render(helm, values_file), "Role", "-api")
    resources = {r for _, r, _ in grants(role)}
    assert "streamlinks/status" not in resources
    assert "secrets" not in resources


def test_operator_role_standalone(helm: str) -> None:
    role = one(render(helm), "Role", "-operator")
    g = grants(role)
    assert g == {
        *{
            ("cast.decentraland.org", "streamlinks", v)
            for v in ("get", "list", "watch", "patch", "delete")
        },
        ("cast.decentraland.org", "streamlinks/status", "patch"),
        ("", "events", "create"),
        ("events.k8s.io", "events", "create"),
    }
    assert not any(group == "kopf.dev" for group, _, _ in g)


def test_operator_role_with_peering(helm: str) -> None:
    role = one(render(helm, ci("peering")), "Role", "-operator")
    g = grants(role)
    assert {("kopf.dev", "kopfpeerings", v) for v in ("get", "list", "watch", "patch")} <= g
    assert ("cast.decentraland.org", "streamlinks/status", "patch") in g
    assert ("", "events", "create") in g


@pytest.mark.parametrize("values_file", ALL_VALUES, ids=VALUES_IDS)
def test_no_wildcards_and_no_cluster_bindings(helm: str, values_file: Path | None) -> None:
    docs = render(helm, values_file)
    for role in of_kind(docs, "Role") + of_kind(docs, "ClusterRole"):
        for rule in rules(role):
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)
            assert "nonResourceURLs" not in rule
    # The processes are namespaced: nothing binds them cluster-wide.
    assert of_kind(docs, "ClusterRoleBinding") == []
    for binding in of_kind(docs, "RoleBinding"):
        (subject,) = binding["subjects"]
        assert subject["kind"] == "ServiceAccount"
        assert subject["namespace"] == NAMESPACE


def test_role_bindings_use_separate_service_accounts(helm: str) -> None:
    docs = render(helm)
    sa_names = {d["metadata"]["name"] for d in of_kind(docs, "ServiceAccount")}
    api_sa = one(docs, "Deployment", "-api")["spec"]["template"]["spec"]["serviceAccountName"]
    op_sa = one(docs, "Deployment", "-operator")["spec"]["template"]["spec"]["serviceAccountName"]
    assert api_sa != op_sa
    assert {api_sa, op_sa} <= sa_names
    api_binding = one(docs, "RoleBinding", "-api")
    op_binding = one(docs, "RoleBinding", "-operator")
    assert api_binding["subjects"][0]["name"] == api_sa
    assert api_binding["roleRef"]["name"] == one(docs, "Role", "-api")["metadata"]["name"]
    assert op_binding["subjects"][0]["name"] == op_sa
    assert op_binding["roleRef"]["name"] == one(docs, "Role", "-operator")["metadata"]["name"]


def test_aggregated_cluster_roles(helm: str) -> None:
    docs = render(helm)
    view = one(docs, "ClusterRole", "-view")
    edit = one(docs, "ClusterRole", "-edit")
    for agg in ("view", "edit", "admin"):
        assert view["metadata"]["labels"][f"rbac.authorization.k8s.io/aggregate-to-{agg}"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"]
    assert {v for _, _, v in grants(view)} == {"get", "list", "watch"}
    assert {"patch", "update", "delete"} <= {v for _, _, v in grants(edit)}
    assert {r for _, r, _ in grants(view) | grants(edit)} == {"streamlinks"}
    off = render(helm, None, "rbac.aggregateClusterRoles=false")
    assert of_kind(off, "ClusterRole") == []


# ---- pods


@pytest.mark.parametrize("values_file", ALL_VALUES, ids=VALUES_IDS)
def test_every_pod_is_locked_down(helm: str, values_file: Path | None) -> None:
    docs = render(helm, values_file)
    assert len(workloads(docs)) == 2
    for wl in workloads(docs):
        pod = wl["spec"]["template"]["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True
        assert psc["runAsUser"] == UID
        assert psc["seccompProfile"]["type"] == "RuntimeDefault"
        tmp_volumes = [v for v in pod["volumes"] if v["name"] == "tmp"]
        assert tmp_volumes and "emptyDir" in tmp_volumes[0]
        for ctr in pod["containers"] + pod.get("initContainers", []):
            csc = ctr["securityContext"]
            assert csc["runAsNonRoot"] is True
            assert csc["runAsUser"] == UID
            assert csc["allowPrivilegeEscalation"] is False
            assert csc["readOnlyRootFilesystem"] is True
            assert csc.get("privileged", False) is False
            assert "ALL" in csc["capabilities"]["drop"]
            assert not csc["capabilities"].get("add")
            assert csc["seccompProfile"]["type"] == "RuntimeDefault"
            assert {"mountPath": "/tmp", "name": "tmp"} in ctr["volumeMounts"]
            assert ctr["resources"]["requests"] and ctr["resources"]["limits"]["memory"]


def test_api_probes_and_port(helm: str) -> None:
    api = container(one(render(helm), "Deployment", "-api"))
    assert api["command"] == ["cast-api"]
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    (port,) = api["ports"]
    assert port["name"] == "http"
    env = env_of(api)
    assert env["CAST_API_PORT"]["value"] == str(port["containerPort"])
    assert env["CAST_API_HOST"]["value"] == "0.0.0.0"


def test_operator_probe_matches_liveness_arg(helm: str) -> None:
    for docs in (render(helm), render(helm, ci("peering"))):
        ctr = container(
            next(w for w in workloads(docs) if w["metadata"]["name"].endswith("-operator"))
        )
        assert ctr["command"] == ["cast-operator"]
        assert "readinessProbe" not in ctr
        assert ctr["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        health = next(p for p in ctr["ports"] if p["name"] == "health")
        assert f"--liveness=http://0.0.0.0:{health['containerPort']}/healthz" in ctr["args"]
        metrics = next(p for p in ctr["ports"] if p["name"] == "metrics")
        assert env_of(ctr)["CAST_OPERATOR_METRICS_PORT"]["value"] == str(metrics["containerPort"])


def test_env_names_are_settings_aliases(helm: str) -> None:
    known = settings_aliases() | {
        "CAST_API_HOST",  # read by cast_api.main
        "CAST_API_PORT",
        "POD_NAME",  # identification (downward API)
        "CAST_OPERATOR_PEERING",  # peering contract (see templates/operator.yaml)
        "CAST_OPERATOR_PRIORITY",
    }
    for values_file in ALL_VALUES:
        for wl in workloads(render(helm, values_file)):
            for name in env_of(container(wl)):
                if name == "EXTRA_FLAG":  # full-values extraEnv sample
                    continue
                assert name in known, f"{name} is not a Settings validation_alias"


def test_both_pods_get_the_shared_environment(helm: str) -> None:
    needed = {
        "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "CAST_LINK_SIGNING_KEY",
        "CAST_NAMESPACE", "CAST_PLACES_BACKEND", "CAST2_URL", "SCENE_ROOM_PREFIX",
        "WORLD_ROOM_PREFIX", "CAST_LINK_TTL", "CAST_RETENTION", "CAST_RESYNC_INTERVAL",
        "CAST_CORS_ORIGINS", "CAST_HTTP_BASE_URL", "PLACES_API_URL", "LAMBDAS_URL",
        "WORLD_CONTENT_URL", "CATALYST_URL", "CAST_LOG_LEVEL",
    }  # fmt: skip
    for wl in workloads(render(helm)):
        env = env_of(container(wl))
        assert needed <= set(env), needed - set(env)
        assert env["CAST_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
        for secret_env in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "CAST_LINK_SIGNING_KEY"):
            assert "value" not in env[secret_env], "credentials only through secretKeyRef"


# ---- operator modes


def test_operator_standalone_is_one_recreate_deployment(helm: str) -> None:
    docs = render(helm)
    op = one(docs, "Deployment", "-operator")
    assert of_kind(docs, "StatefulSet") == []
    assert op["spec"]["replicas"] == 1
    assert op["spec"]["strategy"] == {"type": "Recreate"}
    args = container(op)["args"]
    assert "--standalone" in args
    assert not any(a.startswith(("--peering", "--priority")) for a in args)
    assert of_kind(docs, "KopfPeering") == []


def test_operator_peering_has_distinct_priorities(helm: str) -> None:
    docs = render(helm, ci("peering"))
    assert not [
        d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-operator")
    ]
    sts = one(docs, "StatefulSet", "-operator")
    assert sts["spec"]["replicas"] == 2
    ctr = container(sts)
    args = ctr["args"]
    peering = one(docs, "KopfPeering")
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == "cast-operator"
    assert f"--peering={peering['metadata']['name']}" in args
    assert "--priority=$(CAST_OPERATOR_PRIORITY)" in args
    assert "--standalone" not in args
    # Kubernetes expands $(VAR) in args from env defined in the container; one distinct value per
    # StatefulSet pod.
    priority = env_of(ctr)["CAST_OPERATOR_PRIORITY"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert priority == "metadata.labels['apps.kubernetes.io/pod-index']"
    assert sts["spec"]["serviceName"] in {d["metadata"]["name"] for d in of_kind(docs, "Service")}


def test_kopf_peering_crd_ships_in_crds_dir(helm: str) -> None:
    docs = render(helm, ci("peering"), include_crds=True)
    crds = {d["metadata"]["name"]: d for d in of_kind(docs, "CustomResourceDefinition")}
    kopf = crds["kopfpeerings.kopf.dev"]
    assert kopf["spec"]["scope"] == "Namespaced"
    assert kopf["spec"]["names"]["kind"] == "KopfPeering"
    assert [v["name"] for v in kopf["spec"]["versions"]] == ["v1"]


# ---- PDB / HPA


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ((), False),  # disabled by default
        (("api.podDisruptionBudget.enabled=true", "api.replicas=1"), False),
        (("api.podDisruptionBudget.enabled=true", "api.replicas=2"), True),
        (
            (
                "api.podDisruptionBudget.enabled=true",
                "api.replicas=1",
                "api.autoscaling.enabled=true",
                "api.autoscaling.minReplicas=2",
            ),
            True,
        ),
        (
            (
                "api.podDisruptionBudget.enabled=true",
                "api.replicas=5",
                "api.autoscaling.enabled=true",
                "api.autoscaling.minReplicas=1",
            ),
            False,
        ),
    ],
)
def test_pdb_only_with_more_than_one_replica(
    helm: str, sets: tuple[str, ...], expected: bool
) -> None:
    pdbs = of_kind(render(helm, None, *sets), "PodDisruptionBudget")
    assert bool(pdbs) is expected
    if pdbs:
        (pdb,) = pdbs
        assert pdb["spec"]["minAvailable"] == 1
        assert "maxUnavailable" not in pdb["spec"]
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"


def test_full_values_pdb_hpa_servicemonitor_networkpolicy(helm: str) -> None:
    docs = render(helm, ci("full"))
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"] == {**pdb["spec"], "maxUnavailable": 1}
    assert "minAvailable" not in pdb["spec"]
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    api = one(docs, "Deployment", "-api")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": api["metadata"]["name"],
    }  # fmt: skip
    assert "replicas" not in api["spec"], "the HPA owns replicas"
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    # Never for the operator.
    assert all(d["metadata"]["name"].endswith("-api") for d in of_kind(docs, "PodDisruptionBudget"))
    assert all(
        d["spec"]["scaleTargetRef"]["name"].endswith("-api")
        for d in of_kind(docs, "HorizontalPodAutoscaler")
    )
    monitors = of_kind(docs, "ServiceMonitor")
    assert {m["spec"]["endpoints"][0]["port"] for m in monitors} == {"http", "metrics"}
    for m in monitors:
        assert m["metadata"]["labels"]["release"] == "prometheus"
    policies = of_kind(docs, "NetworkPolicy")
    assert len(policies) == 2
    for np in policies:
        assert set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        egress = np["spec"]["egress"]
        assert all(rule.get("ports") for rule in egress), "a rule without ports allows all"
        ports = {(p["port"], p.get("protocol", "TCP")) for r in egress for p in r["ports"]}
        assert {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP")} <= ports
    api_np = one(docs, "NetworkPolicy", "-api")
    assert api_np["spec"]["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_optional_objects_off_by_default(helm: str) -> None:
    kinds = {d["kind"] for d in render(helm)}
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor",
                 "NetworkPolicy", "ConfigMap", "KopfPeering", "StatefulSet"):  # fmt: skip
        assert kind not in kinds


def test_api_topology_spread(helm: str) -> None:
    api = one(render(helm), "Deployment", "-api")
    spread = api["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    for c in spread:
        assert c["labelSelector"]["matchLabels"] == api["spec"]["selector"]["matchLabels"]
    assert api["spec"]["replicas"] == default_values()["api"]["replicas"]


# ---- Secrets


def _secret_data(secret: Doc, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def test_signing_key_generated_when_not_given(helm: str) -> None:
    docs = render(helm)
    secret = one(docs, "Secret", "-signing-key")
    key = _secret_data(secret, "signing-keys")
    assert re.fullmatch(r"[A-Za-z0-9]{48}", key)
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for wl in workloads(docs):
        ref = env_of(container(wl))["CAST_LINK_SIGNING_KEY"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret["metadata"]["name"], "key": "signing-keys"}


def test_signing_keys_from_values_keep_their_order(helm: str) -> None:
    first, second = "n" * 40, "o" * 40
    docs = render(helm, None, f"linkSigningKey.keys={{{first},{second}}}")
    secret = one(docs, "Secret", "-signing-key")
    assert _secret_data(secret, "signing-keys") == f"{first},{second}"


def test_existing_secrets_are_referenced_not_rendered(helm: str) -> None:
    docs = render(helm, ci("full"))
    assert of_kind(docs, "Secret") == [], "no chart-managed Secret with existing secrets"
    for wl in workloads(docs):
        env = env_of(container(wl))
        assert env["CAST_LINK_SIGNING_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "cast-signing-keys", "key": "CAST_LINK_SIGNING_KEY",
        }  # fmt: skip
        assert env["LIVEKIT_API_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "livekit-credentials", "key": "LIVEKIT_API_KEY",
        }  # fmt: skip
        assert env["LIVEKIT_API_SECRET"]["valueFrom"]["secretKeyRef"] == {
            "name": "livekit-credentials", "key": "LIVEKIT_API_SECRET",
        }  # fmt: skip


def test_livekit_secret_from_values(helm: str) -> None:
    docs = render(helm, ci("testbed"))
    secret = one(docs, "Secret", "-livekit")
    assert _secret_data(secret, "api-key") == "devkey"
    assert _secret_data(secret, "api-secret") == "secret"
    api = container(one(docs, "Deployment", "-api"))
    assert env_of(api)["LIVEKIT_URL"]["value"] == "ws://127.0.0.1:7880"


# ---- places


def test_static_places_configmap_is_mounted(helm: str) -> None:
    docs = render(helm, ci("full"))
    cm = one(docs, "ConfigMap", "-places")
    (key,) = cm["data"]
    places = yaml.safe_load(cm["data"][key])["places"]
    assert [p["id"] for p in places] == [
        "6a1b5f6e-0000-4000-8000-000000000001",
        "6a1b5f6e-0000-4000-8000-000000000002",
    ]
    # Addresses stay strings (YAML 1.1 would read an unquoted 0x… as a number).
    assert places[0]["owner"] == "0x1111111111111111111111111111111111111111"
    for wl in workloads(docs):
        pod = wl["spec"]["template"]["spec"]
        ctr = container(wl)
        path = env_of(ctr)["CAST_PLACES_FILE"]["value"]
        mount = next(m for m in ctr["volumeMounts"] if m["name"] == "places")
        assert path == f"{mount['mountPath']}/{key}"
        assert mount["readOnly"] is True
        volume = next(v for v in pod["volumes"] if v["name"] == "places")
        assert volume["configMap"]["name"] == cm["metadata"]["name"]
    assert "CAST_PLACES_FILE" not in env_of(container(one(render(helm), "Deployment", "-api")))


# ---- CRD


def test_rendered_crd_equals_source(helm: str) -> None:
    docs = render(helm)
    rendered = {d["metadata"]["name"]: d for d in of_kind(docs, "CustomResourceDefinition")}
    for path in SOURCE_CRDS.glob("*.yaml"):
        source = load_yaml(path)
        crd = rendered[source["metadata"]["name"]]
        assert crd["spec"] == source["spec"]
        assert source["metadata"]["labels"].items() <= crd["metadata"]["labels"].items()
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_crd_keep_and_enabled_switches(helm: str) -> None:
    unkept = one(render(helm, None, "crds.keep=false"), "CustomResourceDefinition")
    assert "helm.sh/resource-policy" not in (unkept["metadata"].get("annotations") or {})
    assert of_kind(render(helm, None, "crds.enabled=false"), "CustomResourceDefinition") == []


# ---- testbed


def test_testbed_values_install_what_the_local_processes_need(helm: str) -> None:
    docs = render(helm, ci("testbed"))
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {
        ("ServiceAccount", "cast-api"),
        ("ServiceAccount", "cast-operator"),
        ("Role", "cast-api"),
        ("Role", "cast-operator"),
        ("RoleBinding", "cast-api"),
        ("RoleBinding", "cast-operator"),
        ("Secret", "cast-livekit"),
        ("Secret", "cast-signing-key"),
        ("CustomResourceDefinition", "streamlinks.cast.decentraland.org"),
    } <= names
    # No hooks (Job/Pod hooks hang on a node-less apiserver).
    for doc in docs:
        assert "helm.sh/hook" not in (doc["metadata"].get("annotations") or {})
    assert not of_kind(docs, "Job") and not of_kind(docs, "Pod")


def test_readme_values_table_is_generated_from_values_yaml() -> None:
    import sys

    result = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "helm" / "gen-values-table.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
