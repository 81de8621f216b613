"""The Dagster code location: `dagster dev -m pncp_assets.definitions` or workspace.yaml."""

from __future__ import annotations

import dagster as dg

from pncp_assets.resources import BronzeStorage

defs = dg.Definitions(
    resources={"bronze_storage": BronzeStorage.from_env()},
)
