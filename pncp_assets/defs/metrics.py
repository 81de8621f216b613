"""A step's figures to the Pushgateway (`pncp_assets.metrics`): the hours, days, sweeps and check verdicts of
one layer, each group under its own grouping key, pushed when the step ends (one request per group: a day's
run pushes hundreds, about 1 ms each to a Pushgateway without its consistency check; docs/OPERATIONS.md). A
gateway that fails costs the run one timeout: the first
failure marks the run with a tag, said once in its log, and the run's steps push nothing more (the tag is read
from the instance, so this holds across the run's processes too); it never fails the run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import dagster as dg

from pncp_assets import layout
from pncp_assets.commit import CommitResult
from pncp_assets.defs.resources import MetricsGateway
from pncp_assets.layers import Layer
from pncp_assets.metrics import Gateway
from pncp_assets.sweeps import StoredSweep

NOT_PUSHED_TAG = "pncp/metrics_not_pushed"  # on a run whose pushes failed: the gateway, without credentials


def hour_figures(result: CommitResult) -> dict[str, float]:
    stats = result.stats
    inputs = stats["input_records"]
    return {"input_records": inputs, "new_records": stats["new_records"],
            "duplicates_filtered": stats["duplicates_filtered"], "rejected": stats["rejected"],
            "filter_rate": stats["duplicates_filtered"] / inputs if inputs else 0.0, "held": result.held}


def sweep_figures(sweep: StoredSweep) -> dict[str, float]:
    t = sweep.totals()
    return {"requests": t["requests"], "retries": t["retries"], "throttled": t["throttled"],
            "server_errors": t["server_errors"], "seconds": sweep.seconds}


class StepMetrics:
    """The pushes of one step for one layer, gathered and then pushed by `flush` (also on leaving a `with`
    block); nothing at all without a gateway."""

    def __init__(self, context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, layer: Layer,
                 metrics_gateway: MetricsGateway):
        self.context, self.layer = context, layer
        self.gateway: Gateway | None = metrics_gateway.gateway()
        self.failed: bool | None = None  # unknown until the first flush: another step may have failed already
        self._pending: list[tuple[str, dict[str, str], Mapping[str, float]]] = []

    def __enter__(self) -> StepMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def hour(self, hour: str, figures: Mapping[str, float]) -> None:
        self._push("hour", {"layer": self.layer.source, "partition": hour}, figures)

    def day(self, day: dt.date, figures: Mapping[str, float]) -> None:
        self._push("day", {"layer": self.layer.source, "day": day.isoformat()}, figures)

    def sweep(self, sweep: StoredSweep) -> None:
        # From the sweep's key, to the microsecond: sweeps of a day seconds apart keep their own series.
        started = (layout.sweep_started(sweep.key) or sweep.started).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self._push("sweep", {"layer": self.layer.source, "day": sweep.day.isoformat(), "started": started},
                   sweep_figures(sweep))

    def check(self, check: str, hour: str, passed: bool) -> None:
        self._push("check", {"layer": self.layer.source, "check": check, "partition": hour}, {"passed": passed})

    def _push(self, kind: str, grouping: dict[str, str], figures: Mapping[str, float]) -> None:
        if self.gateway is not None:
            self._pending.append((kind, grouping, figures))

    def flush(self) -> None:
        """Push what is pending; after a failure, nothing more."""
        pending, self._pending = self._pending, []
        if not pending or self.gateway is None:
            return
        if self.failed is None:
            self.failed = self._run_tagged()
        for kind, grouping, figures in pending:
            if self.failed:
                return  # the gateway failed this run: the next pushes would fare no better
            error = self.gateway.push(kind, grouping, figures)
            if error is not None:
                self.failed = True
                run_id = run_id_of(self.context)
                if run_id is not None:
                    self.context.instance.add_run_tags(run_id, {NOT_PUSHED_TAG: self.gateway.shown})
                self.context.log.warning(f"Metrics not pushed to {self.gateway.shown} ({type(error).__name__}: "
                                         f"{str(error)[:200]}); the run goes on without them")

    def _run_tagged(self) -> bool:
        run_id = run_id_of(self.context)
        run = self.context.instance.get_run_by_id(run_id) if run_id is not None else None
        return run is not None and NOT_PUSHED_TAG in run.tags


def run_id_of(context: Any) -> str | None:
    """The step's run, None when the asset is invoked directly (a test)."""
    try:
        return context.run.run_id
    except dg.DagsterError:  # invoked directly (a test): no run
        return None
