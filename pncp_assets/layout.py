"""The storage key layout of Bronze: every key the pipeline reads or writes, named in one place.

    pncp/year=YYYY/month=MM/day=DD/pncp_YYYYMMDD_HH0000.parquet    the published delta of hour H
    pncp/_state/.../state_YYYYMMDD.zst                             the day's state (compact; `.json` before)
    pncp/_archive/year=YYYY/month=MM/states_YYYYMM.zst              archived day states of a month
    pncp/_raw/.../sweep_YYYYMMDD_<UTC start>.json.gz                a stored sweep, and which sweep served H
    pncp/_rejected/.../pncp_YYYYMMDD_HH0000.jsonl                   records rejected by the ID rules
    _staging/pncp/.../pncp_YYYYMMDD_HH0000.<UTC>.<run>.parquet      a delta staged by a run (outside `pncp/`)

Every layer (`layers.py`) uses the same keys under its own prefix (`pncp_versions/`, `pncp_contratos/`, ...).
Each name is spelled once below: a published delta's key by `_delta_path` (which also gives the pattern
people read, `delta_key_pattern`, and the parser, `is_delta_key`), an hour's file name by `_hour_stem` (the
delta, staged and rejected files of an hour), a stored sweep's by `raw_sweep_key` and `sweep_started`. A
change to any of them is a new `LAYOUT_VERSION`, which every day state records (`state/day.py`), so that a
migration can tell a day's files of one layout from the other's.

Days and hours are Brasília time. Only published deltas are Parquet under `pncp/`, so every reader of
`pncp/**/*.parquet` sees each record once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pncp_assets.brasilia import TZ, UTC, parse_day, to_brasilia, utc_now

if TYPE_CHECKING:
    from pncp_assets.storage import ObjectStore

SOURCE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # a layer's prefix
_PARTITION_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{2}:00$")


def validate_source(source: str) -> str:
    """A source name is a lowercase identifier: it becomes a key prefix, so nothing path-like passes."""
    if not isinstance(source, str) or not SOURCE.match(source):
        raise ValueError(f"invalid source {source!r}: use a lowercase name like 'pncp' (a-z, 0-9, _)")
    return source


def parse_partition_key(key: str) -> dt.datetime:
    """`2025-10-22-08:00` -> the aware start of that hour in Brasília time."""
    if not isinstance(key, str) or not _PARTITION_KEY.match(key):
        raise ValueError(f"invalid hourly partition key {key!r}: expected YYYY-MM-DD-HH:00")
    try:
        naive = dt.datetime.strptime(key, "%Y-%m-%d-%H:%M")
    except ValueError:
        raise ValueError(f"invalid hourly partition key {key!r}: not a real date and hour") from None
    return naive.replace(tzinfo=TZ)


def hours_by_day(partition_keys: Iterable[str]) -> dict[dt.date, list[str]]:
    """Hourly partition keys grouped by their Brasília day, days and hours in time order."""
    days: dict[dt.date, list[str]] = {}
    for key in sorted(partition_keys, key=parse_partition_key):
        days.setdefault(parse_partition_key(key).date(), []).append(key)
    return days


def day_hours(day: dt.date) -> list[str]:
    """The 24 hourly partition keys of a Brasília day, in order."""
    return [f"{day:%Y-%m-%d}-{hour:02d}:00" for hour in range(24)]


# An hour's data is due this long after the hour ends: its scheduled run starts at :05 and sweeps within
# minutes. The freshness checks' deadline (hour H by H+1:30) and the CI check's gap rule both use it.
DUE_AFTER_END = dt.timedelta(minutes=30)


def is_due(partition_key: str, now: dt.datetime | None = None) -> bool:
    """Whether hour H should be in Bronze by `now` (by default the present): H ended `DUE_AFTER_END` ago."""
    return parse_partition_key(partition_key) + dt.timedelta(hours=1) + DUE_AFTER_END <= (now or utc_now())


def partition_key_for(moment: dt.datetime) -> str:
    return to_brasilia(moment).strftime("%Y-%m-%d-%H:00")


LAYOUT_VERSION = 1
DAY_FIELDS = ("year", "month", "day")  # the Hive fields of a day's folder, as readers filter on them


def _day_folder(year: str, month: str, day: str) -> str:
    return "/".join(f"{name}={value}" for name, value in zip(DAY_FIELDS, (year, month, day), strict=True))


def _day_path(day: dt.date) -> str:
    return _day_folder(f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}")


def _hour_stem(source: str, ymd: str, hh: str, mmss: str = "0000") -> str:
    """An hour's file name without extension: `pncp_20251022_080000` (minutes and seconds for an upload)."""
    return f"{source}_{ymd}_{hh}{mmss}"


def _delta_path(source: str, year: str, month: str, day: str, hh: str, stem_source: str | None = None,
                ymd: str | None = None) -> str:
    """The one spelling of a published delta's key, filled with values, placeholders or regex groups."""
    stem = _hour_stem(stem_source or source, ymd or f"{year}{month}{day}", hh)
    return f"{source}/{_day_folder(year, month, day)}/{stem}.parquet"


def delta_key_pattern(source: str) -> str:
    """The delta keys of a layer as people read them: `pncp/year=YYYY/month=MM/day=DD/pncp_YYYYMMDD_HH0000.parquet`."""
    return _delta_path(source, "YYYY", "MM", "DD", "HH", ymd="YYYYMMDD")


def day_prefix(source: str, day: str | dt.date | dt.datetime) -> str:
    """The folder of a day's Bronze delta files: `pncp/year=YYYY/month=MM/day=DD/`."""
    return f"{validate_source(source)}/{_day_path(parse_day(day))}/"


def layer_prefix(source: str, layer: str, day: str | dt.date | dt.datetime) -> str:
    """A side layer's folder for a day (`_state`, `_raw`, `_rejected`): skipped by Hive readers, and holding
    no Parquet, so that glob readers of `pncp/**/*.parquet` skip it too."""
    if not layer.startswith("_"):
        raise ValueError(f"side layer {layer!r} must start with '_' so Hive readers skip it")
    return f"{validate_source(source)}/{layer}/{_day_path(parse_day(day))}/"


def bronze_key(source: str, moment: dt.datetime, extension: str = "parquet") -> str:
    """`pncp/year=YYYY/month=MM/day=DD/pncp_YYYYMMDD_HHMMSS.parquet` for a Brasília moment."""
    local = to_brasilia(moment)
    stem = _hour_stem(source, f"{local:%Y%m%d}", f"{local:%H}", f"{local:%M%S}")
    return f"{day_prefix(source, local)}{stem}.{extension}"


def upload_key(source: str, moment: dt.datetime, attempt: int = 0, extension: str = "parquet") -> str:
    """Where the original document's `upload_to_bronze` writes: its own name, `pncp_YYYYMMDD_HHMMSS.parquet`,
    in the moment's day folder; `pncp_YYYYMMDD_HHMMSS_N.parquet` (N = `attempt`) when that name is taken or is
    an hour's delta name (`..._HH0000`, kept for the pipeline even before its delta exists)."""
    key = bronze_key(source, moment, extension)
    if attempt == 0 and not (extension == "parquet" and is_delta_key(key)):
        return key
    return f"{key.rsplit('.', 1)[0]}_{max(attempt, 1)}.{extension}"


def legacy_json_key(source: str, moment: dt.datetime, attempt: int = 0) -> str:
    """The original document's `format="json"` upload, outside the Parquet dataset: `pncp/_legacy_json/...`."""
    name = upload_key(source, moment, attempt, extension="json").rsplit("/", 1)[1]
    return f"{layer_prefix(source, '_legacy_json', moment)}{name}"


def delta_key(source: str, partition_key: str) -> str:
    """The Bronze delta of an hourly partition, named by the hour's start."""
    start = parse_partition_key(partition_key)
    return _delta_path(validate_source(source), f"{start:%Y}", f"{start:%m}", f"{start:%d}", f"{start:%H}")


def state_key(source: str, day: str | dt.date | dt.datetime) -> str:
    """The day's state, in its compact form (`state/day.py`)."""
    d = parse_day(day)
    return f"{layer_prefix(source, '_state', d)}state_{d:%Y%m%d}.zst"


def legacy_state_key(source: str, day: str | dt.date | dt.datetime) -> str:
    """Where the day's state lived as the seed's plain JSON; read until the first write moves it."""
    d = parse_day(day)
    return f"{layer_prefix(source, '_state', d)}state_{d:%Y%m%d}.json"


_STATE_NAME = re.compile("/_state/" + _day_folder(r"\d{4}", r"\d{2}", r"\d{2}") + r"/state_(\d{8})\.(?:zst|json)$")


def day_of_state_key(key: str) -> dt.date | None:
    """The day a state key (compact or legacy) belongs to; None for any other key."""
    match = _STATE_NAME.search(key)
    return dt.datetime.strptime(match.group(1), "%Y%m%d").date() if match else None


def archive_key(source: str, day: str | dt.date | dt.datetime) -> str:
    """The archive holding the day states of `day`'s month: `pncp/_archive/year=YYYY/month=MM/states_YYYYMM.zst`."""
    d = parse_day(day)
    return f"{validate_source(source)}/_archive/year={d.year:04d}/month={d.month:02d}/states_{d:%Y%m}.zst"


def day_of_side_key(key: str) -> dt.date | None:
    """The day of any key under a `year=/month=/day=` folder (raw sweeps, rejects, staged deltas)."""
    match = _DAY_FOLDER.search(key)
    return dt.date(*map(int, match.groups())) if match else None


_DAY_FOLDER = re.compile("/" + _day_folder(r"(\d{4})", r"(\d{2})", r"(\d{2})") + "/")


_DELTA_KEY = re.compile("^" + _delta_path(r"(?P<source>[a-z][a-z0-9_]*)", r"(?P<y>\d{4})", r"(?P<m>\d{2})",
                                          r"(?P<d>\d{2})", r"(?P<h>\d{2})", stem_source="(?P=source)",
                                          ymd="(?P=y)(?P=m)(?P=d)").replace(".parquet", r"\.parquet$"))


def is_delta_key(key: str) -> bool:
    """A published delta: `<source>/year=YYYY/month=MM/day=DD/<source>_YYYYMMDD_HH0000.parquet`, its name
    of its own folder's day. Other Parquet in a day's folder (the original document's uploads) is not the
    pipeline's."""
    return _DELTA_KEY.match(key) is not None


_PIPELINE_SIDE = re.compile(r"^[a-z][a-z0-9_]*/_(?:state|archive|raw|rejected|staging)/")


def is_pipeline_key(key: str) -> bool:
    """A key the pipeline writes and relies on: a delta, a day state (either form), an archive, a stored sweep,
    rejected records, a staged delta. The original document's `write_json_to_s3` refuses them."""
    return key.startswith("_staging/") or is_delta_key(key) or _PIPELINE_SIDE.match(key) is not None


def day_files(store: ObjectStore, source: str, day: str | dt.date | dt.datetime) -> tuple[list[str], list[str]]:
    """A day's Parquet in `store`, from one listing: the published deltas, and the files uploaded beside them
    through the original document's `upload_to_bronze` (`document_api.py`), which are not the pipeline's."""
    parquet = [k for k in store.list(day_prefix(source, day)) if k.endswith(".parquet") and "/_" not in k]
    return [k for k in parquet if is_delta_key(k)], [k for k in parquet if not is_delta_key(k)]


def day_delta_keys(store: ObjectStore, source: str, day: str | dt.date | dt.datetime) -> list[str]:
    """The keys of a day's published deltas in `store` (its state, sweeps, rejects and uploads left out)."""
    return day_files(store, source, day)[0]


def partition_of_delta(key: str) -> str | None:
    """`.../pncp_20251022_080000.parquet` -> `2025-10-22-08:00` (None for any other file)."""
    match = _DELTA_KEY.match(key)
    return f"{match['y']}-{match['m']}-{match['d']}-{match['h']}:00" if match else None


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def staging_prefix(source: str, day: str | dt.date | dt.datetime) -> str:
    """Where a day's staged deltas live: `_staging/pncp/year=YYYY/month=MM/day=DD/`, outside the dataset
    prefix, so that a reader of `pncp/**/*.parquet` never sees a delta that is not published."""
    return f"_staging/{validate_source(source)}/{_day_path(parse_day(day))}/"


def legacy_staging_prefix(source: str, day: str | dt.date | dt.datetime) -> str:
    """Where staged deltas lived before: `pncp/_staging/...` (claims may still name such keys)."""
    return layer_prefix(source, "_staging", day)


def staging_key(source: str, partition_key: str, run_id: str, at: dt.datetime | None = None) -> str:
    """A delta staged by one run: named by the partition, the time (for the grace period) and the run."""
    start = parse_partition_key(partition_key)
    safe_run = re.sub(r"[^A-Za-z0-9_-]", "", run_id)[:64] or "run"
    return (f"{staging_prefix(source, start)}{_hour_stem(source, f'{start:%Y%m%d}', f'{start:%H}')}"
            f".{_stamp(at or utc_now())}.{safe_run}.parquet")


def staged_at(key: str) -> dt.datetime | None:
    """When a staged delta was written (from its name); None if the name is not a staging name."""
    parts = key.rsplit("/", 1)[-1].split(".")
    try:
        return parse_stamp(parts[1]) if len(parts) == 4 else None
    except ValueError:
        return None


def raw_sweep_key(source: str, day: str | dt.date, started: dt.datetime) -> str:
    d = parse_day(day)
    return f"{layer_prefix(source, '_raw', d)}sweep_{d:%Y%m%d}_{_stamp(started)}.json.gz"


_SWEEP_NAME = re.compile(r"/sweep_\d{8}_(\w+)\.json\.gz$")


def sweep_started(key: str) -> dt.datetime | None:
    """When the stored sweep at `key` started (from its name, `raw_sweep_key`'s); None for any other key."""
    match = _SWEEP_NAME.search(key)
    try:
        return parse_stamp(match.group(1)) if match else None
    except ValueError:
        return None


def raw_assignment_key(source: str, partition_key: str) -> str:
    """Which sweep served partition H (a small JSON pointer)."""
    start = parse_partition_key(partition_key)
    return f"{layer_prefix(source, '_raw', start)}partition_{start:%Y%m%d_%H}0000.json"


def rejected_key(source: str, partition_key: str) -> str:
    start = parse_partition_key(partition_key)
    return f"{layer_prefix(source, '_rejected', start)}{_hour_stem(source, f'{start:%Y%m%d}', f'{start:%H}')}.jsonl"
