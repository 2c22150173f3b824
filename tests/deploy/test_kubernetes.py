"""deploy/k8s and deploy/operators, checked offline.

There is no kubectl here, so `build` below is a small kustomize of its own. It knows only
what the overlays use (`resources`, `namespace`, `images`, and `patches` that are strategic
merges of whole objects, one per file) and refuses any other kustomization field, so an
overlay cannot rely on a feature this check would silently skip. Every object of every
overlay is then validated against the Kubernetes schemas bundled by kubernetes-validate
(no network)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from relance.common import tracing
from relance.common.events import TOPICS
from relance.common.service import STOP_SECONDS, ServiceSpec

Obj = dict[str, Any]

KUBERNETES_VERSION = "1.33"  # the oldest minor the manifests are written for
OVERLAYS = ("dev", "prod")
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
# pool_size of relance.common.db.Database, plus the LISTEN connections (relay, loops)
CONNECTIONS_PER_REPLICA = 20 + 3


def load_all(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge, the part the overlays need: maps merge, lists of named items merge
    by name (containers, env, volumes), any other list is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    named = (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    )
    if named:
        result = list(base)
        for item in patch:
            index = next((i for i, b in enumerate(result) if b["name"] == item["name"]), None)
            if index is None:
                result.append(item)
            else:
                result[index] = merge(result[index], item)
        return result
    return patch


def pod_spec(obj: Obj) -> Obj | None:
    if obj["kind"] in ("Deployment", "Job"):
        spec: Obj = obj["spec"]["template"]["spec"]
        return spec
    return None


def build(folder: Path) -> list[Obj]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    assert not unknown, f"{folder}: this test's kustomize does not apply {sorted(unknown)}"
    objects: list[Obj] = []
    for resource in kustomization.get("resources", []):
        path = folder / resource
        objects += build(path) if path.is_dir() else load_all(path)
    for patch in kustomization.get("patches", []):
        assert set(patch) == {"path"}, f"{folder}: only whole-object patches are applied"
        docs = load_all(folder / patch["path"])
        # one patch per file: what every kustomize version reads the same way
        assert len(docs) == 1, f"{folder}: {patch['path']} holds {len(docs)} patches"
        for doc in docs:
            key = (doc["kind"], doc["metadata"]["name"])
            targets = [
                i for i, o in enumerate(objects) if (o["kind"], o["metadata"]["name"]) == key
            ]
            assert len(targets) == 1, f"{folder}: the patch of {key} matches {len(targets)} objects"
            objects[targets[0]] = merge(objects[targets[0]], doc)
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in (pod_spec(obj) or {}).get("containers", []):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    if "namespace" in kustomization:
        for obj in objects:
            obj["metadata"]["namespace"] = kustomization["namespace"]
    return objects


@pytest.fixture(scope="module")
def overlays(root: Path) -> dict[str, list[Obj]]:
    return {name: build(root / "deploy/k8s/overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="module")
def operators(root: Path) -> list[Obj]:
    return load_all(root / "deploy/operators/kafka.yaml") + load_all(
        root / "deploy/operators/postgres.yaml"
    )


def by_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def ours(objects: list[Obj]) -> list[Obj]:
    """Relance's own objects (not, say, the dev overlay's Mailpit)."""
    return [
        o
        for o in objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "relance"
    ]


def quantity(value: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 0.001, "": 1}
    number, unit = re.fullmatch(r"([\d.]+)(\w*)", str(value)).groups()  # type: ignore[union-attr]
    return float(number) * units[unit]


# -- the checks ------------------------------------------------------------------------


def schema_problems(objects: list[Obj]) -> list[str]:
    problems = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            problems.append(f"{obj['kind']} {obj['metadata']['name']}: {where}: {exc.message}")
    return problems


def probe_problems(objects: list[Obj], specs: dict[str, ServiceSpec]) -> list[str]:
    problems = []
    for name, spec in specs.items():
        deployment = by_kind(objects, "Deployment").get(name)
        if deployment is None:
            problems.append(f"no Deployment {name}")
            continue
        container = pod_spec(deployment)["containers"][0]  # type: ignore[index]
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        port = int(env.get("PORT") or spec.settings_cls().port)
        for probe, path in (
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ):
            get = container.get(probe, {}).get("httpGet", {})
            target = ports.get(get.get("port"), get.get("port"))
            if get.get("path") != path or target != port:
                problems.append(
                    f"{name}: {probe} asks {get.get('path')} on {target}, not {path} on {port}"
                )
        service = by_kind(objects, "Service")[name]
        target_port = service["spec"]["ports"][0]["targetPort"]
        if ports.get(target_port, target_port) != port:
            problems.append(f"{name}: the Service sends to {target_port}, the app is on {port}")
    return problems


def environment_problems(objects: list[Obj], specs: dict[str, ServiceSpec]) -> list[str]:
    """Each variable a pod gets, itself or from a ConfigMap, is a setting of its service."""
    config_maps = by_kind(objects, "ConfigMap")
    problems = []
    for obj in ours(objects):
        pod = pod_spec(obj)
        if pod is None:
            continue
        service = obj["metadata"]["name"].removesuffix("-migrate")
        fields = {f.upper() for f in specs[service].settings_cls.model_fields}
        for container in pod["containers"]:
            given = [e["name"] for e in container.get("env", [])]
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef", {}).get("name")
                if ref not in config_maps:
                    problems.append(f"{obj['kind']} {service}: ConfigMap {ref} is not deployed")
                    continue
                given += list(config_maps[ref].get("data", {}))
            problems += [
                f"{obj['kind']} {service}: {v} is not a setting of {service}"
                for v in given
                if v not in fields and v not in tracing.VARIABLES
            ]
            database = [e for e in container.get("env", []) if e["name"] == "DATABASE_URL"]
            if not database or "secretKeyRef" not in database[0].get("valueFrom", {}):
                problems.append(f"{obj['kind']} {service}: DATABASE_URL is not from a Secret")
    return problems


def secret_problems(objects: list[Obj]) -> list[str]:
    return [
        f"Secret {o['metadata']['name']} has values committed"
        for o in objects
        if o["kind"] == "Secret" and (o.get("data") or o.get("stringData"))
    ]


def shutdown_problems(objects: list[Obj]) -> list[str]:
    problems = []
    for name, deployment in by_kind(ours(objects), "Deployment").items():
        pod = pod_spec(deployment) or {}
        pre_stop = pod["containers"][0].get("lifecycle", {}).get("preStop", {})
        sleep = int(pre_stop.get("exec", {}).get("command", ["sleep", "0"])[-1])
        # requests, then the tasks, then the producer: each is given STOP_SECONDS
        needed = sleep + 3 * STOP_SECONDS
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace < needed:
            problems.append(f"{name}: terminationGracePeriodSeconds {grace} < {needed:.0f}")
    return problems


def resource_problems(objects: list[Obj]) -> list[str]:
    # BENCHMARKS.md: about 100 MB idle; the payment-matcher 430 MB during a large import
    least = {"payment-matcher": 512 * 2**20}
    problems = []
    for name, deployment in by_kind(ours(objects), "Deployment").items():
        resources = pod_spec(deployment)["containers"][0].get("resources", {})  # type: ignore[index]
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        if not {"cpu", "memory"} <= set(requests) or "memory" not in limits:
            problems.append(f"{name}: cpu and memory requests and a memory limit are needed")
            continue
        if quantity(limits["memory"]) < least.get(name, 256 * 2**20):
            problems.append(f"{name}: memory limit {limits['memory']} is below its peak use")
        if quantity(requests["memory"]) < 128 * 2**20:
            problems.append(f"{name}: memory request {requests['memory']} is below its idle use")
    return problems


def scaling_problems(objects: list[Obj], operators: list[Obj]) -> list[str]:
    deployments = by_kind(objects, "Deployment")
    partitions = min(t["spec"]["partitions"] for t in by_kind(operators, "KafkaTopic").values())
    problems = []
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    for name, hpa in hpas.items():
        target = hpa["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            problems.append(f"HPA {name} scales {target}, which is not deployed")
        elif "replicas" in deployments[target]["spec"]:
            problems.append(f"{target}: spec.replicas fights its HPA at every apply")
        if hpa["spec"]["maxReplicas"] > partitions:
            problems.append(f"HPA {name}: {hpa['spec']['maxReplicas']} > {partitions} partitions")
    for name, pdb in by_kind(objects, "PodDisruptionBudget").items():
        labels = pdb["spec"]["selector"]["matchLabels"]
        matched = [
            d
            for d in deployments.values()
            if labels.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        if not matched:
            problems.append(f"PDB {name} selects no Deployment")
        least = min((d["spec"].get("replicas", 1) for d in matched), default=1)
        if "minAvailable" in pdb["spec"] and pdb["spec"]["minAvailable"] >= least:
            problems.append(f"PDB {name}: minAvailable with {least} replica(s) blocks drains")
    return problems


def connection_problems(objects: list[Obj], operators: list[Obj]) -> list[str]:
    """At full scale, the replicas' connections fit in the one PostgreSQL cluster."""
    hpa_max = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
        for h in by_kind(objects, "HorizontalPodAutoscaler").values()
    }
    replicas = sum(
        hpa_max.get(name, d["spec"].get("replicas", 1))
        for name, d in by_kind(ours(objects), "Deployment").items()
    )
    jobs = len(by_kind(ours(objects), "Job"))
    needed = replicas * CONNECTIONS_PER_REPLICA + jobs
    cluster = next(iter(by_kind(operators, "Cluster").values()))
    allowed = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"]) - 3
    if needed > allowed:
        return [f"{replicas} replicas need {needed} connections; PostgreSQL allows {allowed}"]
    return []


# -- the overlays as they are ------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_and_validates_against_the_kubernetes_schemas(
    overlays: dict[str, list[Obj]], overlay: str
) -> None:
    objects = overlays[overlay]
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), "two objects of the same kind and name"
    assert schema_problems(objects) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_is_deployed_probed_and_migrated(
    overlays: dict[str, list[Obj]], overlay: str, specs: dict[str, ServiceSpec]
) -> None:
    objects = overlays[overlay]
    assert probe_problems(objects, specs) == []
    jobs, deployments = by_kind(objects, "Job"), by_kind(objects, "Deployment")
    for name in specs:
        job = pod_spec(jobs[f"{name}-migrate"])["containers"][0]  # type: ignore[index]
        assert job["args"] == ["migrate"]
        assert job["image"] == pod_spec(deployments[name])["containers"][0]["image"]  # type: ignore[index]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_each_service_on_the_port_it_listens_on(
    overlays: dict[str, list[Obj]], overlay: str, specs: dict[str, ServiceSpec]
) -> None:
    for name, deployment in by_kind(overlays[overlay], "Deployment").items():
        if name not in specs:
            continue  # Mailpit in the dev overlay
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        container = pod_spec(deployment)["containers"][0]  # type: ignore[index]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        port = int(env.get("PORT") or specs[name].settings_cls().port)
        assert annotations.get("prometheus.io/scrape") == "true", name
        assert annotations.get("prometheus.io/path") == "/metrics", name
        assert int(annotations["prometheus.io/port"]) == port, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_environment_secrets_shutdown_and_resources(
    overlays: dict[str, list[Obj]], overlay: str, specs: dict[str, ServiceSpec]
) -> None:
    objects = overlays[overlay]
    # the checks below look at Relance's own objects: each must say it is one
    labelled = ours(objects)
    assert set(by_kind(labelled, "Deployment")) >= set(specs)
    assert set(by_kind(labelled, "Job")) >= {f"{name}-migrate" for name in specs}
    assert environment_problems(objects, specs) == []
    assert secret_problems(objects) == []
    assert shutdown_problems(objects) == []
    assert resource_problems(objects) == []


def test_no_secret_values_anywhere_in_deploy(root: Path) -> None:
    for path in (root / "deploy").rglob("*.yaml"):
        assert secret_problems(load_all(path)) == [], path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_fits_the_partitions_and_postgresql(
    overlays: dict[str, list[Obj]], overlay: str, operators: list[Obj]
) -> None:
    assert scaling_problems(overlays[overlay], operators) == []
    assert connection_problems(overlays[overlay], operators) == []


def test_prod_scales_what_scales(overlays: dict[str, list[Obj]]) -> None:
    prod = overlays["prod"]
    assert set(by_kind(prod, "HorizontalPodAutoscaler")) == {
        "invoice-api",
        "notifier",
        "payment-matcher",
    }
    assert by_kind(prod, "Deployment")["scheduler"]["spec"]["replicas"] == 2
    assert {o["metadata"]["namespace"] for o in prod} == {"relance"}
    assert all(
        c["image"].startswith("registry.example/relance/")
        for d in by_kind(prod, "Deployment").values()
        for c in pod_spec(d)["containers"]  # type: ignore[index]
    )


def test_operator_examples_name_the_topics_and_databases(
    operators: list[Obj], specs: dict[str, ServiceSpec]
) -> None:
    assert set(by_kind(operators, "KafkaTopic")) == set(TOPICS)
    databases = {d["spec"]["name"] for d in by_kind(operators, "Database").values()}
    assert databases == {"relance_" + s.package.split(".")[-1] for s in specs.values()}
    roles = by_kind(operators, "Cluster")["relance-db"]["spec"]["managed"]["roles"]
    assert {r["name"] for r in roles} == databases


# -- the checks catch what they are meant to ---------------------------------------------


def test_broken_manifests_are_caught(
    overlays: dict[str, list[Obj]], operators: list[Obj], specs: dict[str, ServiceSpec]
) -> None:
    objects = copy.deepcopy(overlays["prod"])
    deployments = by_kind(objects, "Deployment")
    notifier = pod_spec(deployments["notifier"])
    container = notifier["containers"][0]  # type: ignore[index]
    container["readinessProbe"]["httpGet"]["path"] = "/healthz"
    container["livenessProbe"]["httpGet"]["port"] = 8000
    container["env"].append({"name": "SMTP_SERVER", "value": "mail"})
    container["resources"]["limits"]["memory"] = "96Mi"
    container["imagePullPolicy"] = 3  # a string in the schema
    notifier["terminationGracePeriodSeconds"] = 30  # type: ignore[index]
    deployments["invoice-api"]["spec"]["replicas"] = 3
    by_kind(objects, "HorizontalPodAutoscaler")["payment-matcher"]["spec"]["maxReplicas"] = 40
    objects.append(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": {"k": "dg=="}}
    )

    assert any("imagePullPolicy" in p for p in schema_problems(objects))
    assert probe_problems(objects, specs) == [
        "notifier: livenessProbe asks /healthz on 8000, not /healthz on 8002",
        "notifier: readinessProbe asks /healthz on 8002, not /readyz on 8002",
    ]
    assert environment_problems(objects, specs) == [
        "Deployment notifier: SMTP_SERVER is not a setting of notifier"
    ]
    assert resource_problems(objects) == ["notifier: memory limit 96Mi is below its peak use"]
    assert shutdown_problems(objects) == ["notifier: terminationGracePeriodSeconds 30 < 35"]
    assert secret_problems(objects) == ["Secret x has values committed"]
    assert scaling_problems(objects, operators) == [
        "invoice-api: spec.replicas fights its HPA at every apply",
        "HPA payment-matcher: 40 > 12 partitions",
    ]
    assert connection_problems(objects, operators) != []


def test_the_loader_refuses_what_it_does_not_apply(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(AssertionError, match="commonLabels"):
        build(tmp_path)
