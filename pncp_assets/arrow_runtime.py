"""pyarrow set up for a run's process: what the code location calls once, at load (`definitions.py`).

A run is a short process that writes a few hourly Parquet files; pyarrow's defaults suit long analytical
sessions. Measured by `bench/bench_run_cost.py` (README "What a run costs").
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

import pyarrow as pa


class _RefusePandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def skip_pandas_probe() -> None:
    """Spare this process the pandas that pyarrow imports, unused, on its first conversion of Python values.

    pyarrow asks once whether pandas is installed (any `pa.array` of a list asks, to tell pandas objects
    apart) and keeps the answer. Asked here with pandas out of reach, it answers "no pandas": a run then
    never loads pandas (33 MB and about 0.4 s). Conversions that need pandas
    (`to_pandas`, `Table.from_pandas`) still import it when called. What changes is only that
    `pa.array(a_pandas_series)` converts the Series as a plain sequence until then. The code location calls
    this; the library (readers, analysts' notebooks) never does. Nothing happens if pandas is loaded already.
    """
    if "pandas" in sys.modules:
        return
    refuse = _RefusePandas()
    sys.meta_path.insert(0, refuse)
    try:
        pa.array([], pa.int8())
    finally:
        sys.meta_path.remove(refuse)


def use_system_allocator() -> None:
    """pyarrow on the C library's allocator: a run's Arrow data is a few hourly files, and mimalloc's arenas,
    the default, held 3 to 20 MB more of a run's peak for no speed a run could measure. The code location
    calls this unless ARROW_DEFAULT_MEMORY_POOL chooses an allocator (`PipelineSettings.arrow_memory_pool`)."""
    pa.set_memory_pool(pa.system_memory_pool())
