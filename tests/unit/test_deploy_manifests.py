"""The deployment artefacts hold together: Dockerfile, compose stack, kustomize overlays,
the custom resources (Strimzi KafkaTopic, KEDA ScaledObject) and the Prometheus rules.

Each check is a small function that raises AssertionError with a reason; the tests run
them over everything that ships, and ``test_checks_reject_*`` prove each one can fail.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared.config import env_var_names
from shared.topics import Topics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
# The newest Kubernetes release whose schemas kubernetes-validate ships.
K8S_VERSION = kubernetes_validate.latest_version()
CRD_FILES = {
    ("kafka.strimzi.io", "KafkaTopic"): DEPLOY / "crds" / "kafkatopics.kafka.strimzi.io.yaml",
    ("keda.sh", "ScaledObject"): DEPLOY / "crds" / "scaledobjects.keda.sh.yaml",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
SERVICES = ("scheduler", "notifier", "survey")
# What each service's consumer group reads (the Faust agents' topics).
CONSUMES = {
    "scheduler": {"patients", "treatments", "consent", "scheduler-commands", "alerts", "alert-actions", "scheduler-alerts"},
    "notifier": {"due", "alerts", "outbound", "consent", "notifier-retry", "patients", "alert-actions"},
    "survey": {"inbound", "due", "patients", "consent", "survey-phones", "survey-replies", "alerts", "alert-actions",
               "survey-clinician-alerts"},
}
# The metrics the code registers (shared/metrics.py), and kafka-exporter's lag.
KNOWN_METRICS = set(re.findall(r'"(cyclecare_[a-z_]+)"', (ROOT / "shared" / "metrics.py").read_text())) | {
    "kafka_consumergroup_lag"
}


# --------------------------------------------------------------------------- rendering


@functools.cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 0, f"kubectl kustomize {overlay} failed: {out.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    return request.param


def docs_of(overlay: str, *kinds: str) -> list[dict[str, Any]]:
    return [copy.deepcopy(d) for d in render(overlay) if not kinds or d["kind"] in kinds]


def workloads(overlay: str) -> list[dict[str, Any]]:
    """The Faust workers (the portal and its database are checked on their own, below)."""
    return [d for d in docs_of(overlay, *WORKLOAD_KINDS) if d["metadata"]["labels"]["app.kubernetes.io/name"] == "cyclecare"]


def settings(overlay: str) -> dict[str, str]:
    (cm,) = [d for d in render(overlay) if d["kind"] == "ConfigMap"
             and d["metadata"]["name"].startswith("cyclecare-settings")]
    return cm["data"]


def component(doc: dict[str, Any]) -> str:
    return doc["metadata"]["labels"]["app.kubernetes.io/component"]


def topic_partitions(overlay: str) -> dict[str, int]:
    return {t["spec"]["topicName"]: t["spec"]["partitions"] for t in docs_of(overlay, "KafkaTopic")}


# --------------------------------------------------------------------------- checks


def group_of(doc: dict[str, Any]) -> str:
    return doc["apiVersion"].rpartition("/")[0]


def check_builtin(doc: dict[str, Any]) -> None:
    """Strict schema validation of a built-in kind: unknown fields are errors."""
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise AssertionError(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}") from None
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise AssertionError(exc.message) from None


def strict_schema(node: Any) -> Any:
    """An openAPIV3Schema as JSON Schema that, like `kubectl apply`'s strict field
    validation, rejects keys an object does not declare (the API server would prune them)."""
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict_schema(value) for key, value in node.items()}
    if (node.get("type") == "object" and isinstance(node.get("properties"), dict)
            and not node.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in node):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validator(group: str, kind: str) -> tuple[str, jsonschema.protocols.Validator]:
    crd = yaml.safe_load(CRD_FILES[(group, kind)].read_text())
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["served"] and v["storage"]]
    schema = strict_schema(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return f"{group}/{version['name']}", jsonschema.Draft7Validator(schema)


def check_custom(doc: dict[str, Any]) -> None:
    key = (group_of(doc), doc["kind"])
    assert key in CRD_FILES, f"no CRD schema in deploy/crds/ for {doc['apiVersion']} {doc['kind']}"
    api_version, validator = crd_validator(*key)
    assert doc["apiVersion"] == api_version, f"{doc['kind']} must be {api_version}"
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "; ".join(
        f"{doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, e.path))}: {e.message}" for e in errors
    )


def check_resource(doc: dict[str, Any]) -> None:
    if (group_of(doc), doc["kind"]) in CRD_FILES or "." in group_of(doc) and not group_of(doc).endswith(".k8s.io"):
        check_custom(doc)
    else:
        check_builtin(doc)


def check_env(workload: dict[str, Any], configmaps: dict[str, dict[str, str]]) -> None:
    """Every variable a workload sets is one cyclecare reads, and credentials come from a
    Secret reference, never a literal."""
    known = env_var_names()
    for container in workload["spec"]["template"]["spec"]["containers"]:
        names: set[str] = set()
        for var in container.get("env", []):
            names.add(var["name"])
            if var["name"] in {"TWILIO_AUTH_TOKEN", "SMTP_PASSWORD", "CYCLECARE_API_TOKEN", "TWILIO_ACCOUNT_SID"}:
                assert "secretKeyRef" in var.get("valueFrom", {}), f"{var['name']} must come from a Secret"
        for source in container.get("envFrom", []):
            assert "configMapRef" in source and not source.get("prefix"), \
                f"envFrom {source}: only whole ConfigMaps, so the names can be checked"
            cm_name = source["configMapRef"]["name"]
            assert cm_name in configmaps, f"envFrom references missing ConfigMap {cm_name}"
            names |= set(configmaps[cm_name])
        unknown = names - known
        assert not unknown, f"{workload['metadata']['name']} sets variables cyclecare does not read: {sorted(unknown)}"


def check_hardened(workload: dict[str, Any]) -> None:
    name = workload["metadata"]["name"]
    pod = workload["spec"]["template"]["spec"]
    assert pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{name}: pod runAsNonRoot"
    assert pod["securityContext"].get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: pod seccomp"
    assert pod.get("terminationGracePeriodSeconds", 30) >= 60, f"{name}: terminationGracePeriodSeconds < 60"
    assert pod.get("automountServiceAccountToken") is False, f"{name}: mounts an API token it never uses"
    tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for c in pod["containers"] + pod.get("initContainers", []):
        where = f"{name}/{c['name']}"
        sc = c.get("securityContext", {})
        assert sc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot"
        assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
        assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities.drop [ALL]"
        assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccompProfile"
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        assert mounts.get("/tmp") in tmp_volumes, f"{where}: /tmp must be an emptyDir"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c.get("resources", {}).get(kind, {})), f"{where}: {kind}"
        probes = {p: c.get(p, {}).get("httpGet", {}).get("path") for p in
                  ("startupProbe", "readinessProbe", "livenessProbe")}
        assert probes == {"startupProbe": "/readyz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}, \
            f"{where}: probes {probes}"
        startup = c["startupProbe"]
        budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        assert budget >= 300, f"{where}: startup probe allows only {budget}s for table recovery"


def check_scaledobject(so: dict[str, Any], partitions: dict[str, int], env: dict[str, str],
                       targets: dict[str, str]) -> None:
    spec, name = so["spec"], so["metadata"]["name"]
    target = spec["scaleTargetRef"]
    assert targets.get(target["name"]) == target.get("kind", "Deployment"), f"{name}: targets no rendered workload"
    assert spec.get("minReplicaCount", 0) >= 1, f"{name}: must never scale to zero (timers, webhooks)"
    assert spec.get("cooldownPeriod", 300) >= 300, f"{name}: cooldownPeriod too short"
    assert spec["minReplicaCount"] <= spec["maxReplicaCount"], f"{name}: min > max"
    assert spec["maxReplicaCount"] <= int(env["CYCLECARE_PARTITIONS"]), f"{name}: more replicas than partitions"
    svc = name.removeprefix("cyclecare-")
    watched = set()
    for trigger in spec["triggers"]:
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka", f"{name}: scale on consumer lag"
        assert meta["bootstrapServers"] == env["KAFKA_BOOTSTRAP_SERVERS"], f"{name}: bootstrapServers"
        assert meta["consumerGroup"] == f"cyclecare-{svc}", f"{name}: consumerGroup"
        assert int(meta["lagThreshold"]) > 0, f"{name}: lagThreshold"
        topic = meta.get("topic")
        assert topic in partitions, f"{name}: topic {topic!r} has no KafkaTopic"
        assert spec["maxReplicaCount"] <= partitions[topic], f"{name}: maxReplicaCount > partitions of {topic}"
        watched.add(topic.removeprefix("cyclecare."))
    assert watched == CONSUMES[svc], f"{name}: watches {sorted(watched)}, consumes {sorted(CONSUMES[svc])}"


def check_rule(rule: dict[str, Any]) -> None:
    name = rule.get("alert", "?")
    assert {"alert", "expr"} <= set(rule), f"{name}: needs alert and expr"
    notes = rule.get("annotations", {})
    assert notes.get("summary") and len(notes.get("description", "")) > 80, \
        f"{name}: needs a summary and a description of what it means and what to do"
    assert rule.get("labels", {}).get("severity") in {"warning", "critical"}, f"{name}: severity"
    metrics = set(re.findall(r"\b(cyclecare_[a-z_]+?|kafka_consumergroup_lag)(?:_bucket|_count|_sum)?\b",
                             rule["expr"]))
    assert metrics, f"{name}: expr uses no cyclecare metric nor kafka_consumergroup_lag"
    assert metrics <= KNOWN_METRICS, f"{name}: unknown metrics {sorted(metrics - KNOWN_METRICS)}"


# --------------------------------------------------------------------------- kustomize


def test_each_overlay_renders_the_whole_deployment(overlay: str) -> None:
    kinds = [d["kind"] for d in render(overlay)]
    assert sorted(component(w) for w in workloads(overlay)) == sorted(SERVICES)
    assert kinds.count("PodDisruptionBudget") == 4 and kinds.count("ScaledObject") == 3  # the portal's budget too
    assert {"Namespace", "Ingress", "NetworkPolicy", "ServiceAccount"} <= set(kinds)
    assert {t for t in topic_partitions(overlay)} == set(Topics().all())
    for doc in render(overlay):
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace"), f"{doc['kind']}/{doc['metadata']['name']} has no namespace"


def test_builtin_resources_validate_strictly_against_kubernetes_schemas(overlay: str) -> None:
    for doc in render(overlay):
        if (group_of(doc), doc["kind"]) not in CRD_FILES:
            check_builtin(doc)


def test_custom_resources_validate_against_their_crd_schemas(overlay: str) -> None:
    custom = [d for d in render(overlay) if (group_of(d), d["kind"]) in CRD_FILES]
    assert {d["kind"] for d in custom} == {"KafkaTopic", "ScaledObject"}
    for doc in render(overlay):
        check_resource(doc)


def test_workloads_set_only_variables_the_settings_read(overlay: str) -> None:
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs_of(overlay, "ConfigMap")}
    for workload in workloads(overlay):
        check_env(workload, configmaps)


def test_no_secret_values_are_committed(overlay: str) -> None:
    assert not [d for d in render(overlay) if d["kind"] == "Secret"]
    for path in DEPLOY.rglob("*.y*ml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                assert not doc.get("data") and not doc.get("stringData"), f"{path} commits a Secret"
    refs = {v["valueFrom"]["secretKeyRef"]["name"] for w in workloads(overlay)
            for c in w["spec"]["template"]["spec"]["containers"] for v in c.get("env", [])
            if "secretKeyRef" in v.get("valueFrom", {})}
    assert refs == {"cyclecare-credentials"}


def test_every_container_is_hardened_probed_and_bounded(overlay: str) -> None:
    for workload in workloads(overlay):
        check_hardened(workload)
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["worker", component(workload)]


def test_scaling_stays_within_the_partitions(overlay: str) -> None:
    targets = {w["metadata"]["name"]: w["kind"] for w in workloads(overlay)}
    for so in docs_of(overlay, "ScaledObject"):
        check_scaledobject(so, topic_partitions(overlay), settings(overlay), targets)
    assert all("replicas" not in w["spec"] for w in workloads(overlay)), "KEDA owns the replica count"


def test_each_service_has_a_disruption_budget(overlay: str) -> None:
    budgets = {component(p): p["spec"] for p in docs_of(overlay, "PodDisruptionBudget")
               if p["metadata"]["labels"]["app.kubernetes.io/name"] == "cyclecare"}
    assert set(budgets) == set(SERVICES)
    for svc, spec in budgets.items():
        assert spec["selector"]["matchLabels"]["app.kubernetes.io/component"] == svc


def test_twilio_reaches_only_the_two_webhooks_on_the_public_url(overlay: str) -> None:
    (ingress,) = docs_of(overlay, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    routes = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert routes == {"/twilio/sms": "cyclecare-survey", "/twilio/status": "cyclecare-notifier"}
    assert settings(overlay)["CYCLECARE_PUBLIC_URL"] == f"https://{rule['host']}"
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    if overlay == "prod":
        assert rule["host"] == "cyclecare.example.org"
    scheduler = [s for s in docs_of(overlay, "Service") if s["metadata"]["name"] == "cyclecare-scheduler"]
    assert scheduler and scheduler[0]["spec"]["type"] == "ClusterIP"


def test_network_policy_denies_by_default_and_admits_webhooks_from_the_ingress_controller(overlay: str) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in docs_of(overlay, "NetworkPolicy")}
    deny = policies["cyclecare-default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    webhooks = policies["cyclecare-ingress-webhooks"]
    (expr,) = webhooks["podSelector"]["matchExpressions"]
    assert set(expr["values"]) == {"survey", "notifier"}
    (source,) = webhooks["ingress"][0]["from"]
    assert source == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    notifier_egress = policies["cyclecare-notifier-egress-providers"]["egress"][0]["ports"]
    assert {"protocol": "TCP", "port": 443} in notifier_egress


def test_topics_match_the_contract_and_keep_what_must_be_kept(overlay: str) -> None:
    topics = {t["spec"]["topicName"]: t["spec"] for t in docs_of(overlay, "KafkaTopic")}
    assert topics["cyclecare.patients"]["config"]["cleanup.policy"] == "compact"
    retention = {name: spec["config"].get("retention.ms") for name, spec in topics.items()}
    assert retention["cyclecare.dlq"] > retention["cyclecare.due"]
    assert retention["cyclecare.dlq"] >= retention["cyclecare.deliveries"]
    expected_replicas = 3 if overlay == "prod" else 1
    for spec in topics.values():
        assert spec["partitions"] == int(settings(overlay)["CYCLECARE_PARTITIONS"])
        assert spec["replicas"] == expected_replicas
        assert spec["config"]["min.insync.replicas"] < spec["replicas"] or spec["replicas"] == 1


def test_prod_keeps_rocksdb_state_on_a_volume_per_worker() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    env = settings("prod")
    assert env["CYCLECARE_TABLE_STORE"] == "rocksdb://"
    for sts in workloads("prod"):
        assert sts["kind"] == "StatefulSet"
        (claim,) = sts["spec"]["volumeClaimTemplates"]
        pod = sts["spec"]["template"]["spec"]
        assert claim["metadata"]["name"] not in {v["name"] for v in pod["volumes"]}
        (container,) = pod["containers"]
        assert {"name": claim["metadata"]["name"], "mountPath": env["CYCLECARE_DATA_DIR"]} in container["volumeMounts"]
    assert all(so["spec"]["minReplicaCount"] >= 2 for so in docs_of("prod", "ScaledObject"))


def test_dev_runs_one_small_worker_per_service_on_the_memory_store() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    assert settings("dev")["CYCLECARE_TABLE_STORE"] == "memory://"
    assert {w["kind"] for w in workloads("dev")} == {"Deployment"}
    assert all(so["spec"]["maxReplicaCount"] == 1 for so in docs_of("dev", "ScaledObject"))


def consumed_in_code(svc: str) -> set[str]:
    """The topics the service's agents consume, read off the Faust app it builds."""
    from services.bootstrap import build_service
    from shared.config import load_settings

    runtime = build_service(svc, load_settings({}))
    topics = {topic for agent in runtime.app.agents.values() for topic in agent.channel.topics}
    return {topic.removeprefix("cyclecare.") for topic in topics}


@pytest.mark.parametrize("svc", SERVICES)
def test_scaling_watches_every_topic_the_service_consumes(svc: str) -> None:
    in_code = consumed_in_code(svc)
    assert in_code == CONSUMES[svc], (
        f"{svc} consumes {sorted(in_code)}; update CONSUMES and the ScaledObject triggers "
        "(deploy/k8s/base/scaledobjects.yaml)"
    )


# --------------------------------------------------------------------------- the checks can fail


@pytest.fixture
def prod_worker() -> dict[str, Any]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    return workloads("prod")[0]


def test_checks_reject_a_misspelt_or_ill_typed_builtin_field(prod_worker: dict[str, Any]) -> None:
    prod_worker["spec"]["replica"] = 2
    with pytest.raises(AssertionError, match="replica"):
        check_builtin(prod_worker)
    service = docs_of("prod", "Service")[0]
    service["spec"]["ports"][0]["port"] = "eighty"
    with pytest.raises(AssertionError):
        check_builtin(service)


def test_checks_reject_bad_custom_resources() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    topic = docs_of("prod", "KafkaTopic")[0]
    topic["spec"]["partitons"] = 8
    with pytest.raises(AssertionError, match="partitons"):
        check_custom(topic)
    so = docs_of("prod", "ScaledObject")[0]
    so["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 100
    with pytest.raises(AssertionError, match="lagThreshold"):
        check_custom(so)
    so = docs_of("prod", "ScaledObject")[0]
    so["apiVersion"] = "keda.sh/v1"
    with pytest.raises(AssertionError, match="v1alpha1"):
        check_custom(so)
    with pytest.raises(AssertionError, match="no CRD schema"):
        check_resource({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "x"}})


def test_checks_reject_an_unknown_variable_or_a_literal_credential(prod_worker: dict[str, Any]) -> None:
    configmaps = {d["metadata"]["name"]: d["data"] for d in docs_of("prod", "ConfigMap")}
    container = prod_worker["spec"]["template"]["spec"]["containers"][0]
    container["env"].append({"name": "CYCLECARE_KAFKA_URL", "value": "kafka:9092"})
    with pytest.raises(AssertionError, match="CYCLECARE_KAFKA_URL"):
        check_env(prod_worker, configmaps)
    container["env"][-1] = {"name": "CYCLECARE_API_TOKEN", "value": "hunter2"}
    with pytest.raises(AssertionError, match="Secret"):
        check_env(prod_worker, configmaps)


@pytest.mark.parametrize("breakage", ["root", "writable", "no-startup", "short-grace", "no-limits"])
def test_checks_reject_an_unhardened_container(prod_worker: dict[str, Any], breakage: str) -> None:
    pod = prod_worker["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if breakage == "root":
        container["securityContext"]["runAsNonRoot"] = False
    elif breakage == "writable":
        del container["securityContext"]["readOnlyRootFilesystem"]
    elif breakage == "no-startup":
        del container["startupProbe"]
    elif breakage == "short-grace":
        pod["terminationGracePeriodSeconds"] = 30
    else:
        del container["resources"]["limits"]
    with pytest.raises(AssertionError):
        check_hardened(prod_worker)


def test_checks_reject_scaling_past_the_partitions() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    so = docs_of("prod", "ScaledObject")[0]
    targets = {w["metadata"]["name"]: w["kind"] for w in workloads("prod")}
    partitions = dict(topic_partitions("prod"))
    check_scaledobject(copy.deepcopy(so), partitions, settings("prod"), targets)
    topic = so["spec"]["triggers"][0]["metadata"]["topic"]
    with pytest.raises(AssertionError, match="partitions"):
        check_scaledobject(so, {**partitions, topic: 4}, {**settings("prod"), "CYCLECARE_PARTITIONS": "16"}, targets)
    so["spec"]["minReplicaCount"] = 0
    with pytest.raises(AssertionError, match="zero"):
        check_scaledobject(so, partitions, settings("prod"), targets)


def test_checks_reject_a_rule_without_guidance_or_on_unknown_metrics() -> None:
    good = {"alert": "X", "expr": "cyclecare_ready == 0", "labels": {"severity": "warning"},
            "annotations": {"summary": "s", "description": "d" * 100}}
    check_rule(good)
    with pytest.raises(AssertionError, match="description"):
        check_rule({**good, "annotations": {"summary": "s"}})
    with pytest.raises(AssertionError, match="no cyclecare metric"):
        check_rule({**good, "expr": "up == 0"})
    with pytest.raises(AssertionError, match="unknown metrics"):
        check_rule({**good, "expr": "cyclecare_sms_sent_total > 0"})


# --------------------------------------------------------------------------- Prometheus


def test_alert_rules_parse_and_each_says_what_it_means_and_what_to_do() -> None:
    rules_file = DEPLOY / "prometheus" / "cyclecare-alerts.yaml"
    rules = [r for g in yaml.safe_load(rules_file.read_text())["groups"] for r in g["rules"]]
    for rule in rules:
        check_rule(rule)
    exprs = " ".join(r["expr"] for r in rules)
    for needed in ("cyclecare_ready", "kafka_consumergroup_lag", "cyclecare_urgent_alerts_undelivered",
                   "cyclecare_provider_failures_total", "cyclecare_provider_last_success_timestamp_seconds"):
        assert needed in exprs, f"no alert on {needed}"
    if shutil.which("promtool"):
        out = subprocess.run(["promtool", "check", "rules", str(rules_file)],
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stdout + out.stderr


# --------------------------------------------------------------------------- compose and image


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                 timeout=30, check=False).returncode == 0:
        return ["docker", "compose"]
    return None


def test_compose_file_is_accepted_by_compose() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor `docker compose` is installed")
    for args in ([], ["--profile", "twilio-stub"]):
        out = subprocess.run([*command, "-f", str(ROOT / "docker-compose.yml"), *args, "config", "-q"],
                             capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
        assert out.returncode == 0, out.stderr


def test_compose_runs_kraft_kafka_fully_configured_and_workers_after_it() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    kafka = services["kafka"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", kafka["image"])
    kraft = {"CLUSTER_ID", "KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_CONTROLLER_QUORUM_VOTERS",
             "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS", "KAFKA_CONTROLLER_LISTENER_NAMES",
             "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "KAFKA_INTER_BROKER_LISTENER_NAME",
             "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
             "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS",
             "KAFKA_NUM_PARTITIONS", "KAFKA_LOG_DIRS"}
    assert kraft <= set(kafka["environment"]), sorted(kraft - set(kafka["environment"]))
    assert str(kafka["environment"]["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "1"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", kafka["environment"]["CLUSTER_ID"]), "CLUSTER_ID is a base64 UUID"
    assert "healthcheck" in kafka
    for svc in SERVICES:
        worker = services[svc]
        assert worker["command"] == ["worker", svc]
        assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert set(worker["environment"]) <= env_var_names()
        assert worker["environment"]["SMTP_HOST"] == "mailpit" and str(worker["environment"]["SMTP_PORT"]) == "1025"
        assert any(v.startswith("./deploy/") and v.endswith(":/etc/cyclecare/clinics.yaml:ro") for v in worker["volumes"])
        data = [v for v in worker["volumes"] if v.endswith(":/var/lib/cyclecare")]
        assert data and data[0].split(":")[0] in compose["volumes"], f"{svc}: state on a named volume"
    created = set(re.findall(r"^create (\S+)", (DEPLOY / "compose" / "create-topics.sh").read_text(), re.M))
    assert created == set(Topics().all())


def final_stage(dockerfile: str) -> str:
    return re.split(r"^FROM ", dockerfile, flags=re.M)[-1]


def test_image_is_multi_stage_slim_non_root_and_checks_its_health() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)(?: AS (\w+))?", dockerfile, flags=re.M)
    assert len(froms) >= 2 and froms[0][1] == "builder"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.M)
    final = final_stage(dockerfile)
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    assert not re.search(r"build-essential|gcc|apt-get install|pip install", final), "no build tools in the final stage"
    assert re.search(r"^USER 10001", final, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*urllib\.request.*?/healthz", final, re.M)
    assert 'ENTRYPOINT ["cyclecare"]' in final
    assert not re.search(r"\.\[[^\]]*(embedded|test)", dockerfile), "the image installs no dev/test extras"
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", ".dockerignore allow-lists what the build needs"
    assert not {"!tests/", "!tests", "!.venv", "!.git"} & set(patterns)


def test_compose_runs_the_portal_on_postgresql_after_kafka_and_the_database() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    portal = services["portal"]
    assert portal["command"] == ["worker", "portal"]
    assert portal["environment"]["CYCLECARE_DATABASE_URL"].startswith("postgresql+asyncpg://cyclecare:")
    assert set(portal["environment"]) <= env_var_names()
    assert portal["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert portal["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]


def test_each_overlay_runs_the_portal_hardened_on_postgresql_reachable_only_inside(overlay: str) -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in render(overlay)}
    portal = docs[("Deployment", "cyclecare-portal")]
    check_hardened(portal)
    (container,) = portal["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["worker", "portal"]
    assert {v["name"] for v in container["env"]} <= env_var_names()
    (database_url,) = [v for v in container["env"] if v["name"] == "CYCLECARE_DATABASE_URL"]
    assert database_url["valueFrom"]["secretKeyRef"]["name"] == "cyclecare-credentials"
    assert docs[("Service", "cyclecare-portal")]["spec"]["type"] == "ClusterIP"
    assert ("StatefulSet", "cyclecare-postgres") in docs and ("Service", "cyclecare-postgres") in docs
    database_policy = docs[("NetworkPolicy", "cyclecare-postgres")]["spec"]
    assert database_policy["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "cyclecare-portal"}}}]
    (ingress,) = docs_of(overlay, "Ingress")
    assert "cyclecare-portal" not in str(ingress), "the portal is not on the webhooks' public host"
