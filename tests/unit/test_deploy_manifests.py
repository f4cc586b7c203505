"""The Kubernetes manifests agree with the code: ports, addresses, probes, commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from aigen.config import DEFAULT_PORTS, SERVICES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def by_kind(docs: list[dict], kind: str) -> dict:
    [found] = [d for d in docs if d["kind"] == kind]
    return found


def test_kustomization_lists_existing_files():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).exists(), resource
    assert {f"{s}.yaml" for s in (*SERVICES, "gateway", "local-provider")} <= set(kustomization["resources"])


@pytest.mark.parametrize("service", SERVICES)
def test_each_grpc_service_listens_where_the_others_look_for_it(service):
    port = DEFAULT_PORTS[service]
    docs = documents(f"{service}.yaml")
    deployment = by_kind(docs, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", f"services.{service}"]
    assert {"name": "grpc", "containerPort": port} in container["ports"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["AIGEN_LISTEN"] == f"0.0.0.0:{port}"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == port
    service_doc = by_kind(docs, "Service")
    assert service_doc["metadata"]["name"] == service
    assert service_doc["spec"]["ports"][0]["port"] == port
    config = by_kind(documents("config.yaml"), "ConfigMap")["data"]
    assert config[f"AIGEN_{service.upper()}_ADDR"] == f"{service}:{port}"


def test_gateway_and_local_provider_probes_point_at_real_routes():
    gateway = by_kind(documents("gateway.yaml"), "Deployment")
    [container] = gateway["spec"]["template"]["spec"]["containers"]
    paths = {container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")}
    source = "".join(p.read_text() for p in (DEPLOY.parent / "services" / "gateway").rglob("*.py"))
    assert all(f'"{path}"' in source for path in paths), paths
    local = by_kind(documents("local-provider.yaml"), "Deployment")
    [container] = local["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/health"


def test_the_image_installs_the_pinned_dependencies():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "-c constraints.txt" in dockerfile and "ffmpeg" in dockerfile
