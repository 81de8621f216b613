"""Dagster's own floor for bench/bench_run_cost.py: trivial hourly-partitioned assets, run through the same CLI.

- `defs`: three assets in a chain (the floor the issue names);
- `defs_fifteen`: five such chains, the shape of the pncp hourly job (15 steps);
- `defs_pyarrow`: `defs` whose last asset loads `pyarrow.parquet`, the library Bronze is written with.
"""

import dagster as dg

hourly = dg.HourlyPartitionsDefinition(start_date="2025-01-01-00:00", timezone="America/Sao_Paulo")


def chain(prefix: str, last_loads_pyarrow: bool = False) -> list[dg.AssetsDefinition]:
    @dg.asset(name=f"{prefix}a", partitions_def=hourly)
    def first() -> int:
        return 1

    @dg.asset(name=f"{prefix}b", partitions_def=hourly, ins={"previous": dg.AssetIn(f"{prefix}a")})
    def second(previous: int) -> int:
        return previous + 1

    @dg.asset(name=f"{prefix}c", partitions_def=hourly, ins={"previous": dg.AssetIn(f"{prefix}b")})
    def third(previous: int) -> int:
        if last_loads_pyarrow:
            import pyarrow.parquet  # noqa: F401

        return previous + 1

    return [first, second, third]


defs = dg.Definitions(assets=chain(""), executor=dg.in_process_executor)
defs_fifteen = dg.Definitions(assets=[a for p in "vwxyz" for a in chain(p)], executor=dg.in_process_executor)
defs_pyarrow = dg.Definitions(assets=chain("", last_loads_pyarrow=True), executor=dg.in_process_executor)
