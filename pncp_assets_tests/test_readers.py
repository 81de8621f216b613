"""Bronze as its readers see it: the README's "Reading Bronze" snippets, run as they are written, over a
Bronze tree that also holds an in-flight staged delta, an orphaned one and rejected records.

Every reader (pyarrow.dataset, pandas, polars with `**` and Hive partitioning, DuckDB with `**` and
`hive_partitioning`) must count each record once, and its typed columns must agree with the raw JSON, on the
contratações' layer, the contratos' and the atas' versions.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pyarrow as pa
import pytest

from pncp_assets import layout
from pncp_assets.commit import DeltaCommitter
from pncp_assets.defs.assets import LAYER_GRAPHS
from pncp_assets.layers import FIRST_SEEN, layer_named
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.sweeps import SweepStore
from pncp_assets_tests.support.feeds import layer_keys
from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, storage_resource
from pncp_assets_tests.support.readme import readme_snippets

DAY = dt.date(2025, 10, 22)
READ_GRAPHS = tuple(g for g in LAYER_GRAPHS if g.layer.source in ("pncp", "pncp_contratos", "pncp_atas_versions"))


def as_arrow(frame: object) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    if hasattr(frame, "to_arrow"):  # polars
        return frame.to_arrow()
    return pa.Table.from_pandas(frame, preserve_index=False)  # pandas


@pytest.fixture(scope="module")
def bronze_tree(tmp_path_factory):
    """A finished day in Bronze, plus what readers must not count: a delta staged by a run still in
    flight (claimed, not yet published), an orphaned staged delta, and rejected records."""
    from pncp_assets.storage import LocalObjectStore

    root = tmp_path_factory.mktemp("readers") / "bronze"
    store = LocalObjectStore(root)
    config = SimulatorConfig(seed=31, volume=400, bad_ids=3, late_fraction=0.05, late_hours=6)
    with RunningSimulator(config) as sim:
        p = Pipeline(sim, store, storage_resource(store), graphs=READ_GRAPHS)
        hours = [partition(DAY, h) for h in range(24)]
        assert p.run_range(hours[0], hours[-1], now=end_of_hour(DAY, 23)).success
        # The late records appear; a run of 23:00 stages and claims them, then stops before publishing.
        sim.sim.configure(now=dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(7)))
        records = sim.sim.all_records(DAY)
        sweeps = SweepStore(store)
        client = p.resources()["pncp_api"].client(endpoint=FIRST_SEEN.endpoint)
        sweep = sweeps.save(client.sweep_day(DAY), dt.datetime.now(dt.UTC))
        in_flight = DeltaCommitter(store).commit(hours[23], sweep.records(), "run-in-flight")
        assert in_flight.output is not None and in_flight.new_ids  # staged and claimed, not published
        # An orphan: a staged copy of an hour that no claim names (a run that died before its claim).
        orphan = layout.staging_key("pncp", hours[12], "run-that-died")
        store.put(orphan, store.get(layout.delta_key("pncp", hours[12])).data)
    published = {x for key, ids in p.delta_ids(DAY).items() for x in ids}
    assert len(records) > len(published)  # the in-flight records are not published yet
    assert store.list("pncp/_rejected/")
    layers = {layer: {x for keys in layer_keys(store, layer_named(layer), DAY).values() for x in keys}
              for layer in ("pncp_contratos", "pncp_atas_versions")}
    assert all(layers.values())
    return {"root": root, "ids": published, "in_flight": set(in_flight.new_ids), "orphan": orphan, **layers}


def test_the_readme_shows_every_reader():
    assert set(readme_snippets()) == {"pyarrow", "pandas", "polars", "duckdb"}


def test_no_staged_object_lives_under_the_dataset_prefix(bronze_tree):
    from pncp_assets.storage import LocalObjectStore

    store = LocalObjectStore(bronze_tree["root"])
    parquet = [k for k in store.list("pncp/") if k.endswith(".parquet")]
    assert parquet and all(layout.is_delta_key(k) for k in parquet)
    assert bronze_tree["orphan"].startswith("_staging/") and store.exists(bronze_tree["orphan"])
    assert any(k.startswith("_staging/") for k in store.list("_staging/")) and len(store.list("_staging/")) == 2


# Per layer: the column that keys a row, and typed columns to compare with the raw JSON.
TYPED = {"pncp": ("numeroControlePNCP", ["anoCompra"], "valorTotalEstimado"),
         "pncp_contratos": ("numeroControlePNCP", ["anoContrato", "numeroRetificacao"], "valorGlobal"),
         "pncp_atas_versions": ("_version_key", ["anoAta", "cancelado"], None)}


@pytest.mark.parametrize("layer", list(TYPED))
@pytest.mark.parametrize("reader", ["pyarrow", "pandas", "polars", "duckdb"])
def test_every_reader_counts_each_record_once_and_its_columns_match_the_raw_json(bronze_tree, reader, layer):
    scope = {"bronze_root": str(bronze_tree["root"]), "layer": layer}
    exec(readme_snippets()[reader], scope)  # the README's own snippet, as an analyst would paste it
    table = as_arrow(scope["df"])
    key, exact, money = TYPED[layer]
    ids = table.column(key).to_pylist()
    expected = bronze_tree["ids"] if layer == "pncp" else bronze_tree[layer]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected and not set(ids) & bronze_tree["in_flight"]
    rows = table.select([key, *exact, *([money] if money else []), "_raw"]).to_pylist()
    for row in rows:
        raw = json.loads(row["_raw"])
        if key != "_version_key":
            assert raw[key] == row[key]
        for name in exact:
            assert raw[name] == row[name]
        if money is None:
            continue
        expected_value, got = raw.get(money), row[money]
        if expected_value is None:
            assert got is None or (isinstance(got, float) and math.isnan(got))  # pandas shows null as NaN
        else:
            assert got == pytest.approx(float(expected_value))
    if "day" in table.column_names:  # Hive partitioning: the day comes from the path
        assert set(table.column("day").to_pylist()) == {DAY.day}
