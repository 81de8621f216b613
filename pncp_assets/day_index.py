"""A feed's day states over many days, each read once: the multi-day index that the cross-feed checks share.

One record's day is not in its ID, so "does Bronze hold it?" and "on which days?" are questions about many day
states. `DayIndex` answers them for one feed (its first-seen layer and its versions layer), loading each
day's states at most once per index:
- `held(day)`: the IDs the feed's layers hold on that day (first seen, or any version): the links check asks
  it about the contratação a contrato or ata points at (`links.py`);
- `first_seen(day)` and `closed(day)`: what the first-seen layer filed for a day, and whether the day was
  judged against PNCP's count (a closing sweep in its ledger): the holes check asks them about a version
  whose publication day is finished (`holes.py`);
- `first_seen_days(id, around)`: the days whose first-seen state holds an ID, near a day: an ID PNCP moved
  to another publication day is filed on two days, and reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from pncp_assets import layout, ledger
from pncp_assets.layers import LAYERS, Layer, feeds
from pncp_assets.state import DayState, Loaded, StateManager
from pncp_assets.storage import ObjectStore

LOOKBACK_DAYS = 31  # contratos and atas are mostly signed within weeks of their contratação; re-sweeps end at +30


class DayIndex:
    """The day states of one feed's layers (`layers.feeds()[feed]`), by day, each read once per index."""

    def __init__(self, storage: ObjectStore, layers: Sequence[Layer]):
        self.state = StateManager(storage)
        self.first_seen_layer = next((layer for layer in layers if not layer.versioned), None)
        self.versions_layer = next((layer for layer in layers if layer.versioned), None)
        self._loaded: dict[tuple[str, dt.date], Loaded] = {}
        self._held: dict[dt.date, frozenset[str]] = {}
        self._months: dict[tuple[str, int, int], set[dt.date]] = {}

    @classmethod
    def of_feed(cls, storage: ObjectStore, feed: str, layers: Iterable[Layer] = LAYERS) -> DayIndex:
        return cls(storage, feeds(layers)[feed])

    def loaded(self, layer: Layer, day: dt.date) -> Loaded:
        if (layer.source, day) not in self._loaded:
            if day in self._stored_days(layer, day):
                self._loaded[layer.source, day] = self.state.load_fresh(layer, day)
            else:  # no state file: known from the month's listing, without a request per day
                self._loaded[layer.source, day] = Loaded(DayState.new(day, ""), None, "new")
        return self._loaded[layer.source, day]

    def _stored_days(self, layer: Layer, day: dt.date) -> set[dt.date]:
        """The days of `day`'s month that have a state file (compact, legacy or an archive's marker): one
        listing per month and layer."""
        month = (layer.source, day.year, day.month)
        if month not in self._months:
            prefix = layout.layer_prefix(layer.source, "_state", day).rsplit("/day=", 1)[0] + "/"
            self._months[month] = {d for d in map(layout.day_of_state_key, self.state.storage.list(prefix)) if d}
        return self._months[month]

    def first_seen(self, day: dt.date) -> set[str]:
        """The IDs the feed's first-seen layer filed on `day` (none when the feed has no such layer)."""
        return self.loaded(self.first_seen_layer, day).ids if self.first_seen_layer else set()

    def ingested(self, day: dt.date) -> bool:
        """The first-seen layer ever filed the day (its state exists)."""
        return self.first_seen_layer is not None and self.loaded(self.first_seen_layer, day).exists

    def closed(self, day: dt.date) -> bool:
        """The first-seen layer swept the day whole at least once (a closing entry in its ledger)."""
        if self.first_seen_layer is None:
            return False
        entries = self.loaded(self.first_seen_layer, day).state.extra.get(ledger.FIELD, [])
        return ledger.closing(entries, day) is not None

    def held(self, day: dt.date) -> frozenset[str]:
        """The IDs the feed holds on `day`: first seen, or any version (its key's ID part)."""
        if day not in self._held:
            versions = (self.loaded(self.versions_layer, day).ids if self.versions_layer else set())
            self._held[day] = frozenset(self.first_seen(day) | {key.split("@", 1)[0] for key in versions})
        return self._held[day]

    def window(self, day: dt.date, days: int = LOOKBACK_DAYS) -> list[dt.date]:
        """`day` and the `days` before it."""
        return [day - dt.timedelta(days=back) for back in range(days + 1)]

    def uncovered(self, day: dt.date, days: int = LOOKBACK_DAYS) -> list[dt.date]:
        """The days of the window up to `day` that the first-seen layer never filed."""
        return sorted(d for d in self.window(day, days) if not self.ingested(d))

    def missing(self, ids: set[str], day: dt.date, days: int = LOOKBACK_DAYS) -> set[str]:
        """Those of `ids` that no day of the window up to `day` holds."""
        left = set(ids)
        for d in self.window(day, days):
            if not left:
                break
            left -= self.held(d)
        return left

    def first_seen_days(self, record_id: str, around: dt.date, days: int = LOOKBACK_DAYS,
                        until: dt.date | None = None) -> list[dt.date]:
        """The days within `days` of `around` (up to `until`, when given) whose first-seen state holds the ID."""
        span = [around + dt.timedelta(days=d) for d in range(-days, days + 1)]
        return [d for d in span if (until is None or d <= until) and record_id in self.first_seen(d)]
