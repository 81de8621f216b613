"""A day's figures from its state alone: the original document's four metrics (filter rate, state size,
executions, new records per execution) and its completeness by the ledger. One place for the Dagster UI's
daily view (the `<layer>_daily_figures` assets) and for the day's Prometheus metrics."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pncp_assets import ledger
from pncp_assets.state.day import DayState


@dataclass(frozen=True)
class DayFigures:
    state_ids: int
    state_bytes: int
    executions: int
    new_records: int  # over the day's executions
    input_records: int  # over the executions that recorded their input
    duplicates_filtered: int
    api_records: int | None  # PNCP's count at the day's latest sweep (None: no sweep in the ledger)
    bronze_records: int | None  # of the records that sweep listed, those the state holds
    missing_records: int | None  # by the latest closing sweep: short of the count, plus holes (None: no closing)

    @property
    def filter_rate(self) -> float:
        """The document's filter rate over the day: duplicates filtered / input records, 0 to 1."""
        return self.duplicates_filtered / self.input_records if self.input_records else 0.0

    @property
    def new_per_execution(self) -> float:
        return self.new_records / self.executions if self.executions else 0.0

    def as_metrics(self) -> dict[str, float]:
        """The figures the day's metrics carry (`metrics.GROUPS["day"]`); unknown ones are left out."""
        figures: dict[str, float | None] = {
            "state_ids": self.state_ids, "state_bytes": self.state_bytes, "executions": self.executions,
            "api_records": self.api_records, "bronze_records": self.bronze_records,
            "missing_records": self.missing_records}
        return {k: v for k, v in figures.items() if v is not None}

    @property
    def complete_pct(self) -> float | None:
        """Of PNCP's count at the latest closing sweep, the share Bronze holds (records missing and holes left
        out), in percent; None before the day's first closing sweep."""
        if self.missing_records is None or self.api_records is None:
            return None
        if not self.api_records:
            return 100.0 if not self.missing_records else 0.0
        return round(100 * max(0, self.api_records - self.missing_records) / self.api_records, 2)

    def as_metadata(self) -> dict[str, Any]:
        """The daily view's metadata: numbers only, so that the UI plots each over the days. Plotted by day,
        the UI draws a day's highest value: each figure here grows over a day's runs (completeness as the
        share held, not the records missing), but `new_per_execution`, which re-sweeps lower."""
        figures: dict[str, Any] = {
            "executions": self.executions, "new_records": self.new_records,
            "new_per_execution": round(self.new_per_execution, 2),
            "filter_rate": round(100 * self.filter_rate, 2),  # percent, as the hours' metadata shows it
            "state_ids": self.state_ids, "state_bytes": self.state_bytes}
        if self.api_records is not None:
            figures.update(api_total=self.api_records, bronze_held=self.bronze_records)
        if self.complete_pct is not None:
            figures["complete_pct"] = self.complete_pct
        return figures


def of_day(state: DayState, day: dt.date) -> DayFigures:
    executions = state.executions
    inputs = [e for e in executions if isinstance(e.get("input_records"), int)]
    entries = state.extra.get(ledger.FIELD, [])
    latest = max(reversed(entries), key=lambda e: e["at"]) if entries else None  # ties: the last recorded
    api, held, _ = ledger.totals(latest) if latest else (None, None, None)
    verdict = ledger.judge(state, day)
    return DayFigures(
        state_ids=len(state.processed_ids), state_bytes=len(state.encode()), executions=len(executions),
        new_records=sum(int(e.get("new_records", 0)) for e in executions),
        input_records=sum(e["input_records"] for e in inputs),
        duplicates_filtered=sum(int(e.get("duplicates_filtered", 0)) for e in inputs),
        api_records=api, bronze_records=held, missing_records=None if verdict is None else verdict.missing)
