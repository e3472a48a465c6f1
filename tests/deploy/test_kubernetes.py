"""The Kubernetes manifests of deploy/kubernetes/ are valid against the Kubernetes schemas
(offline, kubernetes-validate's bundled ones, strict: an unknown field is an error), fit
together (selectors, ports, secrets, volumes), fail closed (no optional secret, no placeholder
secret applied), and run a daemon our own parser accepts with the ConfigMap's TOML: the
Deployment Kafka-only with the intake off, the StatefulSet the intake with its spool on the
claim, and the variant of intake-on-kafka/ the intake on a Kafka spool without a volume."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ilagent.cli import build_parser, resolve_options
from ilagent.commands.daemon import daemon_config
from ilagent.config import DaemonConfig

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
# the oldest Kubernetes the manifests are for, and the newest whose schemas are bundled
VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version() + ".0")
# what `kubectl apply -k` applies, and the examples beside it that the user copies and fills in
MANIFESTS = sorted(p for p in KUBERNETES.glob("*.yaml")
                   if p.name != "kustomization.yaml" and not p.name.endswith(".example.yaml"))
EXAMPLES = sorted(KUBERNETES.glob("*.example.yaml"))
# the intake on a Kafka spool, applied instead of the StatefulSet (a kustomization of its own)
VARIANT = KUBERNETES / "intake-on-kafka"
VARIANT_MANIFESTS = sorted(p for p in VARIANT.glob("*.yaml") if p.name != "kustomization.yaml")
# values nobody means to run with: a kustomization that ships one runs with it
PLACEHOLDER = re.compile(r"replace[-_ ]?me|change[-_ ]?me|example|placeholder|your[-_]|<[^>]*>",
                         re.IGNORECASE)


def documents(paths: list[Path] = MANIFESTS) -> list[dict[str, Any]]:
    """Every resource of the manifest files (by default those the kustomization applies)."""
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


def resource(kind: str, name: str | None = None, *,
             paths: list[Path] = MANIFESTS) -> dict[str, Any]:
    """The one resource of that kind (and name) in ``paths`` (the base's by default), the
    example Secret included."""
    found = [
        d
        for d in documents([*paths, *EXAMPLES])
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} found"
    return found[0]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return dict(only)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", [*MANIFESTS, *EXAMPLES, *VARIANT_MANIFESTS],
                         ids=[str(p.relative_to(KUBERNETES))
                              for p in [*MANIFESTS, *EXAMPLES, *VARIANT_MANIFESTS]])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    """Each resource passes strict schema validation for that Kubernetes version."""
    resources = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert resources
    for doc in resources:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_can_fail() -> None:
    """A misspelt field (readinesProbe) and a wrong type (replicas: "two") are refused."""
    deployment = resource("Deployment")
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    for bad in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, VERSIONS[-1], strict=True)


@pytest.mark.parametrize(("folder", "manifests"), [(KUBERNETES, MANIFESTS),
                                                    (VARIANT, VARIANT_MANIFESTS)],
                         ids=["base", "intake-on-kafka"])
def test_the_kustomization_lists_every_manifest(folder: Path, manifests: list[Path]) -> None:
    """kubectl apply -k applies all of them but the examples, and nothing that is not there."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in manifests]


def walk(node: Any) -> Iterator[Any]:
    """Every mapping, list and scalar inside a parsed YAML document."""
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(
        node, list) else ()
    for child in children:
        yield from walk(child)


def test_no_secret_reference_is_optional() -> None:
    """No secretKeyRef, envFrom secretRef or secret volume in deploy/kubernetes/ is optional:
    without the Secret or one of its keys the pod does not start, rather than run without
    authentication or credentials."""
    paths = sorted(KUBERNETES.rglob("*.yaml"))
    optional = [(path.name, ref) for path in paths for doc in documents([path])
                for node in walk(doc) if isinstance(node, dict)
                for name, ref in node.items()
                if name in ("secretKeyRef", "secretRef", "secret") and isinstance(ref, dict)
                and ref.get("optional") is True]
    assert optional == []
    assert any(isinstance(n, dict) and "secretKeyRef" in n for n in walk(documents()))


def test_the_kustomization_ships_no_placeholder_secret() -> None:
    """What `kubectl apply -k` applies holds no Secret and no placeholder value ("replace-me",
    "changeme", "example", …): the user creates the Secret; secret.example.yaml beside the
    kustomization shows it, with every key the workloads read (the bridge's event-key too)."""
    for folder, manifests in ((KUBERNETES, MANIFESTS), (VARIANT, VARIANT_MANIFESTS)):
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert "secretGenerator" not in kustomization
        shipped = documents(manifests)
        assert [d["metadata"]["name"] for d in shipped if d["kind"] == "Secret"] == []
        placeholders = [value for value in walk(shipped)
                        if isinstance(value, str) and PLACEHOLDER.search(value)]
        assert placeholders == []
    applied = documents([*MANIFESTS, *VARIANT_MANIFESTS])
    assert [p.name for p in EXAMPLES] == ["secret.example.yaml"]
    (example,) = documents(EXAMPLES)
    wanted = {n["secretKeyRef"]["key"] for n in walk(applied)
              if isinstance(n, dict) and "secretKeyRef" in n}
    assert {"event-key", "kafka-sasl-password", "http-token"} <= wanted <= set(
        example["stringData"])


WORKLOADS = [("Deployment", MANIFESTS), ("StatefulSet", MANIFESTS),
             ("Deployment", VARIANT_MANIFESTS)]
WORKLOAD_IDS = ["bridge", "intake", "intake-on-kafka"]


@pytest.mark.parametrize(("kind", "paths"), WORKLOADS, ids=WORKLOAD_IDS)
def test_workloads_run_hardened_with_probes_and_resources(kind: str, paths: list[Path]) -> None:
    """Non-root, read-only root file system, no privilege escalation, no capabilities;
    readiness on /ready…, liveness on /health, both on the port the daemon serves; requests
    and a memory limit."""
    workload = resource(kind, paths=paths)
    pod = workload["spec"]["template"]["spec"]
    main = container(workload)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    context = main["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert main["readinessProbe"]["httpGet"]["path"].startswith("/ready")
    assert main["livenessProbe"]["httpGet"]["path"] == "/health"
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"]["port"] in ports
    args = main["args"]
    assert ports[main["livenessProbe"]["httpGet"]["port"]] == int(args[args.index("-p") + 1])
    assert {"cpu", "memory"} <= set(main["resources"]["requests"])
    assert "memory" in main["resources"]["limits"]
    assert (
        workload["spec"]["selector"]["matchLabels"].items()
        <= workload["spec"]["template"]["metadata"]["labels"].items()
    )


def test_selectors_secrets_and_volumes_fit_together() -> None:
    """Each PodDisruptionBudget covers exactly one workload's pods, the Services reach the
    intake's pods on a named port they have, the StatefulSet's governing Service exists, and
    every secret key and volume a container uses is there."""
    workloads = [resource("Deployment"), resource("StatefulSet")]
    labels = [w["spec"]["template"]["metadata"]["labels"] for w in workloads]
    for budget in (d for d in documents() if d["kind"] == "PodDisruptionBudget"):
        wanted = budget["spec"]["selector"]["matchLabels"].items()
        assert sum(wanted <= pod.items() for pod in labels) == 1, budget["metadata"]["name"]
    intake = resource("StatefulSet")
    services = [d for d in documents() if d["kind"] == "Service"]
    assert intake["spec"]["serviceName"] in {s["metadata"]["name"] for s in services}
    for service in services:
        assert service["spec"]["selector"].items() <= labels[1].items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in {p["name"] for p in container(intake)["ports"]}
    secret = resource("Secret")
    for workload in workloads:
        main = container(workload)
        for variable in main.get("env", []):
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in secret["stringData"], ref["key"]
        volumes = {v["name"] for v in workload["spec"]["template"]["spec"]["volumes"]}
        volumes |= {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        assert {m["name"] for m in main["volumeMounts"]} <= volumes


def effective_config(workload: dict[str, Any], tmp_path: Path, *,
                     paths: list[Path] = MANIFESTS) -> DaemonConfig:
    """The configuration the workload's daemon starts with: its arguments, its Secret's values
    as environment, and the ConfigMap's file where --config points (read by our own code)."""
    main = container(workload)
    config_map = resource("ConfigMap", paths=paths)
    (mount,) = [m for m in main["volumeMounts"] if m["name"] == "config"]
    args = list(main["args"])
    path = args[args.index("--config") + 1]
    assert path.startswith(mount["mountPath"] + "/")
    local = tmp_path / Path(path).name
    local.write_text(config_map["data"][Path(path).name])
    args[args.index("--config") + 1] = str(local)
    secret = resource("Secret")["stringData"]
    environ = {
        v["name"]: secret[v["valueFrom"]["secretKeyRef"]["key"]] for v in main.get("env", [])
    }
    parser = build_parser()
    parsed = parser.parse_args(args)
    sources = resolve_options(parser, parsed, args, environ=environ)
    return daemon_config(parsed, sources)


def test_the_deployment_runs_kafka_only_with_the_intake_off(tmp_path: Path) -> None:
    """Kafka with the ConfigMap's topics and mapping, the key from the Secret, probes and
    metrics served, no intake (and so no spool file in a pod without a volume for it)."""
    config = effective_config(resource("Deployment"), tmp_path)
    assert config.kafka is not None and config.kafka.event_topics
    assert config.http is not None and config.http.intake is False
    assert config.rules.event_key == resource("Secret")["stringData"]["event-key"]
    assert (
        dict(config.kafka.extra)["sasl.password"]
        == resource("Secret")["stringData"]["kafka-sasl-password"]
    )


def test_the_statefulset_runs_the_intake_with_its_spool_on_the_claim(tmp_path: Path) -> None:
    """The intake on, a token from the Secret, and the spool file inside the claim's mount."""
    intake = resource("StatefulSet")
    config = effective_config(intake, tmp_path)
    assert config.http is not None and config.http.intake is True and config.http.tokens
    (claim,) = intake["spec"]["volumeClaimTemplates"]
    (mount,) = [
        m for m in container(intake)["volumeMounts"] if m["name"] == claim["metadata"]["name"]
    ]
    assert Path(config.db_file).parent == Path(mount["mountPath"])


@pytest.mark.parametrize(("kind", "paths"), WORKLOADS, ids=WORKLOAD_IDS)
def test_pods_get_no_service_links(kind: str, paths: list[Path]) -> None:
    """enableServiceLinks is false: no <SERVICE>_PORT=tcp://… variables in our pods (ilagent
    ignores those shapes anyway, but other ILAGENT_* variables would only add noise)."""
    assert resource(kind, paths=paths)["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_the_intake_on_a_kafka_spool_keeps_nothing_in_the_pod(tmp_path: Path) -> None:
    """The variant runs the intake with a token, its events spooled to a Kafka topic consumed
    by a group of its own from the earliest offset, the SASL password from the Secret; several
    replicas, readiness on /ready/intake, no volume but its config and /tmp, no -f."""
    intake = resource("Deployment", paths=VARIANT_MANIFESTS)
    config = effective_config(intake, tmp_path, paths=VARIANT_MANIFESTS)
    assert config.http is not None and config.http.intake is True and config.http.tokens
    assert config.kafka is not None and config.kafka.spool_topic
    assert config.kafka.group_id != "ilagent"  # not the Kafka bridge's group
    assert config.kafka.offset_reset == "earliest"
    assert (dict(config.kafka.extra)["sasl.password"]
            == resource("Secret")["stringData"]["kafka-sasl-password"])
    assert intake["spec"]["replicas"] >= 2
    main = container(intake)
    assert main["readinessProbe"]["httpGet"]["path"] == "/ready/intake"
    assert "-f" not in main["args"] and "volumeClaimTemplates" not in intake["spec"]
    pod = intake["spec"]["template"]["spec"]
    assert {v["name"]: set(v) - {"name"} for v in pod["volumes"]} == {
        "config": {"configMap"}, "tmp": {"emptyDir"}}
    assert {m["name"] for m in main["volumeMounts"]} == {"config", "tmp"}
    pod_labels = intake["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"] for p in main["ports"]}
    for other in documents(VARIANT_MANIFESTS):
        if other["kind"] in ("Service", "PodDisruptionBudget"):
            selector = other["spec"]["selector"]
            wanted = selector.get("matchLabels", selector)
            assert wanted.items() <= pod_labels.items(), other["metadata"]["name"]
        if other["kind"] == "Service":
            assert {p["targetPort"] for p in other["spec"]["ports"]} <= ports
