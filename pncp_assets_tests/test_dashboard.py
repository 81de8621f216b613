"""The Grafana dashboard (deploy/grafana/pncp_assets.json): every query of every panel, evaluated by a real
Prometheus scraping a real Pushgateway after real runs over two feeds and two days (the API throttling and
failing now and then), returns what the day states, Bronze, the API's own request log and Dagster's check
verdicts hold."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import defaultdict
from pathlib import Path

import pytest

from pncp_assets import bronze, layout
from pncp_assets.defs.assets import GRAPHS
from pncp_assets.layers import CONTRATOS, FIRST_SEEN
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.state import StateManager
from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, storage_resource
from pncp_assets_tests.support.prometheus import PrometheusStack

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "pncp_assets.json"
DAY, NEXT = dt.date(2025, 10, 22), dt.date(2025, 10, 23)
LAYERS = (FIRST_SEEN, CONTRATOS)
MODALIDADES = (6, 8, 9)


class World:
    """What the runs left, read without the code that pushed the metrics."""

    def __init__(self, p: Pipeline, verdicts: dict[tuple[str, str, str], bool]):
        self.p, self.verdicts = p, verdicts
        self.states = {(layer.source, day): StateManager(p.store).load_fresh(layer, day).state
                       for layer in LAYERS for day in (DAY, NEXT)}

    def bronze_ids(self, source: str, day: dt.date) -> dict[str, list[str]]:
        field = "numeroControlePNCP"
        return {layout.partition_of_delta(k): bronze.parquet_ids(self.p.store.get(k).data, field)
                for k in layout.day_delta_keys(self.p.store, source, day)}

    def latest_executions(self, source: str, day: dt.date) -> dict[str, dict]:
        """Each hour's latest execution, as the day's state recorded it."""
        latest: dict[str, dict] = {}
        for e in self.states[(source, day)].executions:
            latest[e["partition"]] = e
        return latest

    def requests(self, source: str, day: dt.date) -> list:
        path = {"pncp": "/v1/contratacoes/publicacao", "pncp_contratos": "/v1/contratos"}[source]
        return [r for r in self.p.sim.sim.log if r.path == path and r.params.get("dataInicial") == f"{day:%Y%m%d}"]

    def sweep_seconds(self, source: str, day: dt.date) -> float:
        keys = [k for k in self.p.store.list(layout.layer_prefix(source, "_raw", day)) if "/sweep_" in k]
        return sum(json.loads(gzip.decompress(self.p.store.get(k).data))["seconds"] for k in keys)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from pncp_assets.storage import LocalObjectStore

    root = tmp_path_factory.mktemp("dashboard")
    store = LocalObjectStore(root / "bronze")
    config = SimulatorConfig(seed=73, volume=150, bad_ids=2, rate_limit_every=9, rate_limit_burst=1,
                             error_5xx_rate=0.1)
    with PrometheusStack(root / "prometheus") as prometheus, RunningSimulator(config) as sim:
        p = Pipeline(sim, store, storage_resource(store), pushgateway=prometheus.gateway,
                     graphs=(GRAPHS[FIRST_SEEN.source], GRAPHS[CONTRATOS.source]))
        results = [p.run_range(partition(DAY, 0), partition(DAY, 17), now=end_of_hour(DAY, 17))]
        for hour in range(18, 24):  # the hourly schedule's runs, the API's clock moving with them
            results.append(p.run(partition(DAY, hour), now=end_of_hour(DAY, hour)))
        results.append(p.run_range(partition(NEXT, 0), partition(NEXT, 11), now=end_of_hour(NEXT, 11)))
        assert all(r.success for r in results)
        # A record copied into another hour's file of the next day, as a buggy writer would: the standalone
        # check fails that hour.
        deltas = sorted(k for k in layout.day_delta_keys(store, "pncp", NEXT))
        victim, other = (bronze.read_parquet(store.get(k).data) for k in deltas[:2])
        store.put(deltas[1], bronze.table_to_parquet(bronze.concat_tables([other, victim.slice(0, 1)],
                                                                          FIRST_SEEN.schema)))
        results.append(p.run_check_only(layout.partition_of_delta(deltas[1])))
        verdicts: dict[tuple[str, str, str], bool] = {}
        for result in results:  # in run order: the latest verdict of each hour wins
            for c in result.get_asset_check_evaluations():
                source = c.asset_key.path[-1].removesuffix("_new_records")
                verdicts[(source, c.check_name, c.partition)] = c.passed
        world = World(p, verdicts)
        world.prometheus = prometheus
        world.bad_hour = layout.partition_of_delta(deltas[1])
        prometheus.scraped()  # every push of every run is in Prometheus
        yield world


def _expected(w: World, day: dt.date) -> dict[str, list[dict[tuple, float]]]:
    """Panel title -> per query, the values keyed by their labels, from the states, Bronze, the API's log and
    Dagster's verdicts."""
    sources = [layer.source for layer in LAYERS]
    hours_of = {s: w.latest_executions(s, day) for s in sources}
    days = (DAY, NEXT)

    def per_day(figure) -> dict[tuple, float]:
        return {(s, d.isoformat()): figure(s, d) for s in sources for d in days}

    def state(s: str, d: dt.date):
        return w.states[(s, d)]

    failures: dict[tuple, float] = defaultdict(float)
    for (s, check, hour), passed in w.verdicts.items():
        if hour.startswith(day.isoformat()):
            failures[(s, check)] += not passed
    truth = {"pncp": lambda d: sum(1 for m in MODALIDADES for _ in w.p.sim.sim.visible_records(d, m)),
             "pncp_contratos": lambda d: len(w.p.sim.sim.visible_records(d, kind="contratos"))}
    closed = {(s, d.isoformat()): 0.0 for s in sources for d in days if d == DAY}  # only DAY has its 23:00
    return {
        "Filter rate per feed, the day": [
            {(s,): sum(e["duplicates_filtered"] for e in hours_of[s].values())
             / sum(e["input_records"] for e in hours_of[s].values()) for s in sources}],
        "Filter rate per hour": [
            {(s, h): e["duplicates_filtered"] / e["input_records"] if e["input_records"] else 0.0
             for s in sources for h, e in hours_of[s].items()}],
        "State size: IDs per day": [per_day(lambda s, d: len(state(s, d).processed_ids))],
        "State size: bytes per day": [per_day(
            lambda s, d: len(w.p.store.get(layout.state_key(s, d)).data))],
        "Executions per day": [per_day(lambda s, d: len(state(s, d).executions))],
        "New records per execution, per day": [per_day(
            lambda s, d: sum(e["new_records"] for e in state(s, d).executions) / len(state(s, d).executions))],
        "New records per hour over the day": [
            {(s, h): len(w.bronze_ids(s, day).get(h, [])) for s in sources for h in hours_of[s]}],
        "API: requests, retries, 429s and 5xx per day": [
            per_day(lambda s, d: len(w.requests(s, d))),
            per_day(lambda s, d: sum(r.status != 200 and r.status != 204 for r in w.requests(s, d))),
            per_day(lambda s, d: sum(r.status == 429 for r in w.requests(s, d))),
            per_day(lambda s, d: sum(r.status >= 500 for r in w.requests(s, d)))],
        "API: seconds sweeping per day": [per_day(w.sweep_seconds)],
        "Completeness: PNCP's count and Bronze, per day": [
            per_day(lambda s, d: truth[s](d)),
            per_day(lambda s, d: len(set().union(*w.bronze_ids(s, d).values())))],
        "Completeness: records missing per day": [closed],
        "Check failures, the day": [dict(failures)],
    }


def _labels(panel_title: str, metric: dict) -> tuple:
    keys = {"Filter rate per feed, the day": ("layer",), "Check failures, the day": ("layer", "check")}
    hourly = ("Filter rate per hour", "New records per hour over the day")
    names = keys.get(panel_title) or (("layer", "partition") if panel_title in hourly else ("layer", "day"))
    return tuple(metric[n] for n in names)


def _evaluate(w: World, day: dt.date) -> dict[str, list[dict[tuple, float]]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = {}
    for panel in dashboard["panels"]:
        found[panel["title"]] = []
        for target in panel["targets"]:
            expr = target["expr"].replace("$layer", ".*").replace("$day", day.isoformat())
            found[panel["title"]].append({_labels(panel["title"], r["metric"]): float(r["value"][1])
                                          for r in w.prometheus.query(expr)})
    return found


def test_the_dashboard_is_grafana_json_whose_variables_come_from_the_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["layer"]["definition"] == "label_values(pncp_day_state_ids, layer)"
    assert variables["day"]["definition"] == "label_values(pncp_day_state_ids, day)"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and all(t["datasource"]["uid"] == "${datasource}"
                                             for p in dashboard["panels"] for t in p["targets"])


def test_every_panel_shows_what_the_states_bronze_and_the_api_hold(world):
    expected = _expected(world, DAY)
    found = _evaluate(world, DAY)
    assert set(found) == set(expected), "a panel without its expected values here, or one missing"
    for title, queries in expected.items():
        assert len(found[title]) == len(queries), title
        for want, got in zip(queries, found[title], strict=True):
            assert set(got) == set(want), (title, sorted(set(got) ^ set(want))[:6])
            for key, value in want.items():
                assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-3), (title, key)
    # The world is not a trivial one: the API throttled and failed, records were filed every hour of DAY.
    api = found["API: requests, retries, 429s and 5xx per day"]
    assert sum(api[2].values()) > 0 and sum(api[3].values()) > 0
    assert sum(found["New records per hour over the day"][0].values()) > 100


def test_the_check_failures_panel_names_the_failed_check_of_the_next_day(world):
    found = _evaluate(world, NEXT)["Check failures, the day"][0]
    assert found[("pncp", "bronze_consistent")] == 1
    assert found == _expected(world, NEXT)["Check failures, the day"][0]


def test_the_daily_view_in_dagster_shows_each_days_figures_as_its_state_holds_them(world):
    """The Dagster UI's daily view: the latest materialisation of each day's partition of `<layer>_daily_figures`."""
    import dagster as dg

    for layer in LAYERS:
        key = dg.AssetKey(f"{layer.source}_daily_figures")
        records = world.p.instance.fetch_materializations(key, limit=100).records
        latest: dict[str, dict] = {}
        for record in sorted(records, key=lambda r: r.storage_id):
            latest[record.partition_key] = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        assert set(latest) == {DAY.isoformat(), NEXT.isoformat()}
        for day in (DAY, NEXT):
            state, shown = world.states[(layer.source, day)], latest[day.isoformat()]
            executions = state.executions
            assert shown["executions"] == len(executions)
            assert shown["state_ids"] == len(state.processed_ids) == len(set().union(*world.bronze_ids(layer.source,
                                                                                                    day).values()))
            assert shown["state_bytes"] == len(world.p.store.get(layout.state_key(layer.source, day)).data)
            assert shown["new_per_execution"] == round(len(state.processed_ids) / len(executions), 2)
            rate = sum(e["duplicates_filtered"] for e in executions) / sum(e["input_records"] for e in executions)
            assert shown["filter_rate"] == round(100 * rate, 2)
            assert shown.get("complete_pct") == (100 if day == DAY else None)  # only DAY has had its closing sweep
