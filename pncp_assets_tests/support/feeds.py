"""What each feed's layer must hold for a day, from the simulator's truth, and the check that it does."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from pncp_assets import bronze, layout
from pncp_assets.layers import ATAS_VERSIONS, CONTRATOS, CONTRATOS_VERSIONS, Layer
from pncp_assets.pncp.simulator import ATAS as ATAS_KIND
from pncp_assets.pncp.simulator import CONTRATOS as CONTRATOS_KIND
from pncp_assets.pncp.simulator import PncpSimulator
from pncp_assets.state import StateManager
from pncp_assets.storage import ObjectStore

NEW_FEEDS = (CONTRATOS, CONTRATOS_VERSIONS, ATAS_VERSIONS)


def hour_key(moment: str) -> str:
    """An API timestamp (Brasília wall time) -> the hourly partition it is filed in."""
    return dt.datetime.fromisoformat(moment).strftime("%Y-%m-%d-%H:00")


def feeds_truth(sim: PncpSimulator, day: dt.date) -> dict[Layer, dict[str, str]]:
    """Per new layer: key -> the hour it belongs to, for a finished day swept after every change (no clock
    movement left): contratos by publication, versions by change."""
    truth: dict[Layer, dict[str, str]] = {}
    truth[CONTRATOS] = {r["numeroControlePNCP"]: hour_key(r["dataPublicacaoPncp"])
                        for r in sim.visible_records(day, kind=CONTRATOS_KIND)}
    for layer, kind in ((CONTRATOS_VERSIONS, CONTRATOS_KIND), (ATAS_VERSIONS, ATAS_KIND)):
        truth[layer] = {layer.key.of(r): hour_key(r["dataAtualizacaoGlobal"])
                        for r in sim.updated_records(day, kind=kind)}
    return truth


def layer_keys(store: ObjectStore, layer: Layer, day: dt.date) -> dict[str, list[str]]:
    """Hour -> the keys its delta holds."""
    return {layout.partition_of_delta(k): bronze.parquet_ids(store.get(k).data, layer.key.field)
            for k in layout.day_delta_keys(store, layer.source, day)}


def assert_layer_exact(store: ObjectStore, layer: Layer, day: dt.date, expected: dict[str, str] | set[str]) -> None:
    """Every expected key exactly once (and, given as key -> hour, in its hour); the day's state equal to Bronze."""
    deltas = layer_keys(store, layer, day)
    counts = Counter(x for keys in deltas.values() for x in keys)
    twice = [x for x, n in counts.items() if n > 1]
    assert not twice, f"{layer.source} {day}: filed twice: {twice[:5]}"
    state = StateManager(store).load_state(layer.source, day) if deltas else {"processed_ids": []}
    assert state["processed_ids"] == sorted(counts), f"{layer.source} {day}: state disagrees with Bronze"
    missing, extra = set(expected) - set(counts), set(counts) - set(expected)
    assert not missing and not extra, f"{layer.source} {day}: missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]}"
    if not isinstance(expected, dict):
        return
    filed = {x: hour for hour, keys in deltas.items() for x in keys}
    wrong = [x for x, hour in expected.items() if filed[x] != hour]
    assert not wrong, f"{layer.source} {day}: {len(wrong)} in another hour than theirs, e.g. {wrong[:3]}"
