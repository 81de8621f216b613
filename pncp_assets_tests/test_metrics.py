"""The run's figures in Prometheus: pushed to a real Pushgateway, scraped by a real Prometheus."""

from __future__ import annotations

import time

import pytest

from pncp_assets.metrics import Gateway
from pncp_assets_tests.support.prometheus import PrometheusStack


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    with PrometheusStack(tmp_path_factory.mktemp("prometheus")) as stack:
        yield stack


def test_each_hours_figures_keep_their_own_series(prometheus):
    gateway = Gateway(prometheus.gateway)
    # A layer of its own: the module's Prometheus is shared with the other tests' runs.
    for hour, new in (("2025-10-22-10:00", 7), ("2025-10-22-11:00", 3)):
        assert gateway.push("hour", {"layer": "pushed_by_hand", "partition": hour},
                            {"new_records": new, "duplicates_filtered": 20, "filter_rate": 20 / (20 + new)}) is None
    series = prometheus.wait_for('pncp_hour_new_records{layer="pushed_by_hand"}', count=2)
    assert {s["metric"]["partition"]: float(s["value"][1]) for s in series} == \
        {"2025-10-22-10:00": 7.0, "2025-10-22-11:00": 3.0}
    assert {s["metric"]["job"] for s in series} == {"pncp_assets"}


def test_an_unreachable_gateway_fails_within_its_timeout_and_never_shows_its_credentials():
    gateway = Gateway("http://metrics-user:s3cret@127.0.0.1:9/", timeout_s=1.0)
    start = time.monotonic()
    error = gateway.push("hour", {"layer": "pncp", "partition": "2025-10-22-10:00"}, {"new_records": 1})
    assert error is not None and time.monotonic() - start < 5
    assert "s3cret" not in str(error) and "metrics-user" not in str(error)
    assert gateway.shown == "http://127.0.0.1:9/"


def test_a_runs_figures_reach_prometheus_as_the_state_and_bronze_hold_them(prometheus, local_store):
    import datetime as dt

    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
    from pncp_assets.state import StateManager
    from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, metadata_by_hour, partition, storage_resource

    day = dt.date(2025, 10, 22)
    with RunningSimulator(SimulatorConfig(seed=61, volume=200, bad_ids=2)) as sim:
        p = Pipeline(sim, local_store, storage_resource(local_store), pushgateway=prometheus.gateway)
        result = p.run_range(partition(day, 0), partition(day, 23), now=end_of_hour(day, 23))
    assert result.success
    prometheus.scraped()
    filed = {pk: len(ids) for pk, ids in p.delta_ids(day).items()}
    series = prometheus.wait_for('pncp_hour_new_records{layer="pncp",partition=~"2025-10-22-.*"}', count=24)
    assert {s["metric"]["partition"]: int(float(s["value"][1])) for s in series if float(s["value"][1])} == filed
    held = prometheus.wait_for('pncp_hour_records_held{layer="pncp"}', count=24)
    assert {s["metric"]["partition"] for s in held} == set(filed) | {partition(day, h) for h in range(24)}
    metadata = metadata_by_hour(result, "pncp_new_records")
    rejected = prometheus.wait_for('sum(pncp_hour_rejected_records{layer="pncp"})')
    assert float(rejected[0]["value"][1]) == sum(m["rejected"] for m in metadata.values())
    state = StateManager(local_store).load_fresh("pncp", day).state
    [ids] = prometheus.wait_for('pncp_day_state_ids{layer="pncp",day="2025-10-22"}')
    assert float(ids["value"][1]) == len(state.processed_ids) == sum(filed.values())
    [size] = prometheus.wait_for('pncp_day_state_bytes{layer="pncp",day="2025-10-22"}')
    assert float(size["value"][1]) > 0


def test_a_gateway_that_is_down_never_fails_the_run(local_store):
    import datetime as dt

    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
    from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, storage_resource

    day = dt.date(2025, 10, 22)
    with RunningSimulator(SimulatorConfig(seed=61, volume=100)) as sim:
        p = Pipeline(sim, local_store, storage_resource(local_store), pushgateway="http://who:pw@127.0.0.1:9")
        result = p.run(partition(day, 10), now=end_of_hour(day, 10))
    assert result.success
    warnings = [e.user_message for e in p.instance.all_logs(result.run_id) if "Metrics not pushed" in e.user_message]
    assert len(warnings) == 1 and "who:pw" not in warnings[0] and "127.0.0.1:9" in warnings[0]
    assert p.instance.get_run_by_id(result.run_id).tags["pncp/metrics_not_pushed"] == "http://127.0.0.1:9"


def test_a_gateway_that_fails_is_tried_once_per_run_not_once_per_push(local_store, httpserver):
    """A gateway answering 500 to everything: the run's first push fails and marks the run; its other steps
    (sweep, deltas, state, checks) push nothing more, so a gateway that hangs costs the run one timeout."""
    import datetime as dt

    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
    from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, storage_resource

    httpserver.no_handler_status_code = 500  # every request, whatever its path
    url = httpserver.url_for("/").replace("://", "://who:pw@")
    day = dt.date(2025, 10, 22)
    with RunningSimulator(SimulatorConfig(seed=61, volume=100)) as sim:
        p = Pipeline(sim, local_store, storage_resource(local_store), pushgateway=url)
        result = p.run_range(partition(day, 0), partition(day, 23), now=end_of_hour(day, 23))
    assert result.success
    assert len(httpserver.log) == 1, [request.path for request, _ in httpserver.log]
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"].startswith("Basic ")  # the URL's credentials, as basic auth
    warnings = [e for e in p.instance.all_logs(result.run_id) if "Metrics not pushed" in e.user_message]
    assert [e.step_key for e in warnings] == ["pncp_raw_pages"] and "who:pw" not in warnings[0].user_message


def test_the_gateway_comes_from_the_environment_and_a_bad_value_is_refused_unshown():
    from pncp_assets.config import ConfigError
    from pncp_assets.defs.environment import metrics_gateway

    assert metrics_gateway({}).gateway() is None  # unset: no metrics, no error
    with pytest.raises(ConfigError, match="PNCP_PUSHGATEWAY_URL is not an http") as refused:
        metrics_gateway({"PNCP_PUSHGATEWAY_URL": "gateway:9091 with s3cret"})
    assert "s3cret" not in str(refused.value)
    bound = metrics_gateway({"PNCP_PUSHGATEWAY_URL": "http://u:s3cret@gateway:9091"})
    assert bound.url is not None and "s3cret" not in repr(bound)  # config holds the variable's name, not the URL


def test_the_retention_job_deletes_the_gateways_groups_of_old_days_only(prometheus, tmp_path):
    from pncp_assets.defs.resources import BronzeStorage, MetricsGateway, Retention
    from pncp_assets.defs.retention import pncp_retention

    gateway = Gateway(prometheus.gateway)
    layer = "pruned_by_retention"  # this test's own groups, far from the other tests' days
    for day in ("2024-01-01", "2024-03-01"):
        assert gateway.push("day", {"layer": layer, "day": day}, {"state_ids": 1}) is None
        assert gateway.push("hour", {"layer": layer, "partition": f"{day}-10:00"}, {"new_records": 1}) is None
        assert gateway.push("check", {"layer": layer, "check": "no_duplicates", "partition": f"{day}-10:00"},
                            {"passed": 1}) is None

    def ours() -> set[tuple[str, ...]]:
        return {tuple(sorted(g.items())) for g in gateway.groups() if g["layer"] == layer}

    assert len(ours()) == 6
    resources = {"bronze_storage": BronzeStorage(data_dir=str(tmp_path)), "retention": Retention(metrics_days=45),
                 "metrics_gateway": MetricsGateway(url=prometheus.gateway)}
    config = {"ops": {"apply_retention_op": {"config": {"today": "2024-03-10", "dry_run": True}}}}
    dry = pncp_retention.execute_in_process(run_config=config, resources=resources)
    assert dry.success and deleted(dry) == 3 and len(ours()) == 6  # a dry run counts, deletes nothing
    config["ops"]["apply_retention_op"]["config"]["dry_run"] = False
    done = pncp_retention.execute_in_process(run_config=config, resources=resources)
    assert done.success and deleted(done) == 3
    kept = ours()  # 2024-01-01 is past the 45 days before 2024-03-10; 2024-03-01 is not
    assert len(kept) == 3 and all("2024-03-01" in "".join(v for _, v in g) for g in kept)


def deleted(result) -> int:
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return output.event_specific_data.metadata["metric_groups_deleted"].value


def test_the_operations_table_names_every_metric_with_its_type_and_labels():
    """docs/OPERATIONS.md's table is the one place a reader finds the metrics: it must say what the code pushes."""
    import re
    from pathlib import Path

    from pncp_assets.metrics import GROUPS

    text = (Path(__file__).resolve().parents[1] / "docs" / "OPERATIONS.md").read_text()
    rows = re.findall(r"^\| `(pncp_\w+)` \| (\w+) \| ([\w, ]+) \|", text, re.M)
    documented = {name: (kind, tuple(label.strip() for label in labels.split(","))) for name, kind, labels in rows}
    pushed = {f.name: (f.type, group.labels) for group in GROUPS.values() for f in group.figures.values()}
    assert documented == pushed
    for name, (kind, _) in pushed.items():  # Prometheus' conventions: counters end in _total, and only they
        assert name.endswith("_total") == (kind == "counter"), name
