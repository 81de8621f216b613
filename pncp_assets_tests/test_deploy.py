"""The deployment files say what the running code expects: the cluster profile loads as a Dagster
instance config, the Helm values use only keys the official chart documents and agree with the cluster
profile, and no file holds a secret. (No Kubernetes here: the Helm values are checked, not installed.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "deploy" / "cluster" / "dagster.yaml"
VALUES = REPO / "deploy" / "k8s" / "values.yaml"
PUSHGATEWAY_VALUES = REPO / "deploy" / "k8s" / "pushgateway-values.yaml"
MONITORING_VALUES = REPO / "deploy" / "k8s" / "monitoring-values.yaml"
DOCKERFILE = REPO / "deploy" / "k8s" / "Dockerfile"

# The keys of the `dagster` chart (1.13) these values may set, as its values.yaml and values schema
# (helm/dagster/schema) document them. `*` is a list item.
CHART_KEYS = {
    "global.postgresqlSecretName", "generatePostgresqlPasswordSecret",
    "postgresql.enabled", "postgresql.postgresqlHost", "postgresql.postgresqlUsername",
    "postgresql.postgresqlDatabase", "postgresql.postgresqlParams", "postgresql.service.port",
    "dagsterWebserver.replicaCount", "dagsterWebserver.envSecrets.*.name",
    "dagster-user-deployments.enabled", "dagster-user-deployments.deployments.*.name",
    "dagster-user-deployments.deployments.*.image.repository", "dagster-user-deployments.deployments.*.image.tag",
    "dagster-user-deployments.deployments.*.image.pullPolicy",
    "dagster-user-deployments.deployments.*.dagsterApiGrpcArgs.*", "dagster-user-deployments.deployments.*.port",
    "dagster-user-deployments.deployments.*.envSecrets.*.name",
    "dagster-user-deployments.deployments.*.includeConfigInLaunchedRuns.enabled",
    "runLauncher.type", "runLauncher.config.k8sRunLauncher.envSecrets.*.name",
    "dagsterDaemon.enabled", "dagsterDaemon.runCoordinator.enabled", "dagsterDaemon.runCoordinator.type",
    "dagsterDaemon.runMonitoring.enabled", "dagsterDaemon.runMonitoring.pollIntervalSeconds",
    "dagsterDaemon.runMonitoring.startTimeoutSeconds", "dagsterDaemon.runMonitoring.maxResumeRunAttempts",
    "dagsterDaemon.runMonitoring.maxRuntimeSeconds",
    "dagsterDaemon.runMonitoring.freeSlotsAfterRunEndSeconds",
    "dagsterDaemon.runRetries.enabled", "dagsterDaemon.runRetries.maxRetries",
    "concurrency.enabled", "concurrency.runs.maxConcurrentRuns", "concurrency.pools.defaultLimit",
    "telemetry.enabled",
}


def paths(node: object, prefix: str = "") -> set[str]:
    if isinstance(node, dict):
        return set().union(*(paths(v, f"{prefix}{k}.") for k, v in node.items())) if node else {prefix[:-1]}
    if isinstance(node, list):
        return set().union(*(paths(v, f"{prefix}*.") for v in node)) if node else {prefix[:-1]}
    return {prefix[:-1]}


def test_the_cluster_profile_is_a_valid_instance_config_with_postgres_celery_and_the_pools():
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    config = yaml.safe_load(CLUSTER.read_text())
    result = validate_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors]
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "PNCP_DAGSTER_PG_URL"}
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("pncp_assets.deploy.celery_launcher", "PingingCeleryRunLauncher")
    from pncp_assets.deploy.celery_launcher import PingingCeleryRunLauncher

    checked = validate_config(PingingCeleryRunLauncher.config_type(), launcher["config"])
    assert checked.success, [e.message for e in checked.errors]
    assert launcher["config"]["broker"] == {"env": "PNCP_CELERY_BROKER_URL"}
    # A lost worker is noticed in about a minute; max_runtime_seconds stays the bound for healthy long runs.
    assert launcher["config"]["worker_lost_after_seconds"] + 2 * config["run_monitoring"]["poll_interval_seconds"] \
        < 300 <= config["run_monitoring"]["max_runtime_seconds"]
    assert config["concurrency"]["pools"]["default_limit"] == 1
    # Every pool the assets use gets its row at `up` (see deploy/cluster/cluster.py).
    from pncp_assets.definitions import defs

    pools = set().union(*(n.pools or () for n in defs.resolve_asset_graph().asset_nodes))
    assert pools == set(re.findall(r'"(pncp_\w+)"', (REPO / "deploy" / "cluster" / "cluster.py").read_text().split(
        "POOLS = ")[1].split(")")[0]))


def test_the_helm_values_use_only_documented_keys_and_agree_with_the_cluster_profile():
    values = yaml.safe_load(VALUES.read_text())
    unknown = paths(values) - CHART_KEYS
    assert not unknown, f"keys the chart does not document: {sorted(unknown)}"
    cluster = yaml.safe_load(CLUSTER.read_text())
    daemon = values["dagsterDaemon"]
    assert values["concurrency"]["enabled"] is True
    assert values["concurrency"]["pools"]["defaultLimit"] == cluster["concurrency"]["pools"]["default_limit"]
    assert values["concurrency"]["runs"]["maxConcurrentRuns"] == cluster["concurrency"]["runs"]["max_concurrent_runs"]
    assert daemon["runRetries"]["maxRetries"] == cluster["run_retries"]["max_retries"]
    monitoring = cluster["run_monitoring"]
    assert daemon["runMonitoring"] == {"enabled": True, "pollIntervalSeconds": monitoring["poll_interval_seconds"],
                                       "startTimeoutSeconds": monitoring["start_timeout_seconds"],
                                       "maxRuntimeSeconds": monitoring["max_runtime_seconds"],
                                       "maxResumeRunAttempts": monitoring["max_resume_run_attempts"],
                                       "freeSlotsAfterRunEndSeconds": monitoring["free_slots_after_run_end_seconds"]}


def test_every_deployment_loads_the_same_code_location():
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"][0]["python_module"]
    module, attribute = workspace["module_name"], workspace["attribute"]
    values = yaml.safe_load(VALUES.read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module, "-a", attribute]
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE.read_text(), re.M)
    assert cmd and yaml.safe_load(cmd.group(1))[-4:] == ["-m", module, "-a", attribute]
    assert f"-p\", \"{deployment['port']}\"" in DOCKERFILE.read_text()


def test_the_monitoring_values_scrape_the_runs_gateway_and_provision_the_dashboard():
    """The Pushgateway's Service, the address Prometheus scrapes and the PNCP_PUSHGATEWAY_URL the values tell
    the runs to use are one; the scrape keeps the runs' labels; the dashboard comes from its file."""
    from pncp_assets_tests.support.prometheus import GATEWAY_FLAGS

    gateway = yaml.safe_load(PUSHGATEWAY_VALUES.read_text())
    address = f"{gateway['fullnameOverride']}:{gateway['service']['port']}"
    # Started everywhere as the tests start it (without the per-push consistency check).
    assert set(GATEWAY_FLAGS) <= set(gateway["extraArgs"])
    assert all(f'"{flag}"' in (REPO / "deploy" / "cluster" / "cluster.py").read_text() for flag in GATEWAY_FLAGS)
    assert f"PNCP_PUSHGATEWAY_URL=http://{address}" in PUSHGATEWAY_VALUES.read_text()
    monitoring = yaml.safe_load(MONITORING_VALUES.read_text())
    [scrape] = monitoring["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"]
    assert scrape["honor_labels"] is True and scrape["static_configs"] == [{"targets": [address]}]
    [provider] = monitoring["grafana"]["dashboardProviders"]["dashboardproviders.yaml"]["providers"]
    assert provider["options"]["path"] == f"/var/lib/grafana/dashboards/{provider['name']}"
    flag = re.search(r"--set-file grafana\.dashboards\.(\w+)\.[\w-]+\.json=(\S+)", MONITORING_VALUES.read_text())
    assert flag and flag.group(1) == provider["name"] and (REPO / flag.group(2)).is_file()
    assert json.loads((REPO / flag.group(2)).read_text())["panels"]


def test_no_deployment_file_holds_a_secret():
    for path in (CLUSTER, VALUES, DOCKERFILE, REPO / "deploy" / "cluster" / "dagster_celery_config.py",
                 PUSHGATEWAY_VALUES, MONITORING_VALUES):
        text = path.read_text()
        assert not re.search(r"(?i)(password|secret_access_key|postgresqlPassword)\s*[:=]\s*\S", text), path
        assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), f"credentials in a URL in {path}"
