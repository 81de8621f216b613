"""The Dagster UI as a person sees it: headless Chromium (Debian's, at /usr/bin/chromium; `scripts/test.sh`
installs it) driven by Playwright, reading what the check pages show."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# As the machine's probe starts it: no sandbox as root, no GPU, and none of Chromium's own network calls
# (this machine's network refuses them, many at a time).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
STATUSES = ("Execution Failed", "Failed", "In Progress", "Missing", "Skipped", "Passed")


@contextmanager
def dagster_ui(url: str) -> Iterator[UIPage]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium package"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(60_000)
            yield UIPage(page, url)
        finally:
            browser.close()


class UIPage:
    """A browser tab on the Dagster UI at `url`."""

    def __init__(self, page: Any, url: str):
        self.page, self.url = page, url
        self._greeted = False

    def open(self, path: str) -> None:
        self.page.goto(f"{self.url}{path}")
        if not self._greeted:  # a new browser is greeted once by a "Join the Dagster community" dialog
            self.page.get_by_role("button", name="Skip").click()
            self._greeted = True

    def check_partitions(self, asset: str, check: str, hour: str | None = None) -> dict[str, Any]:
        """Open `check` of `asset` on its Partitions tab, as a person would from the asset's Checks tab;
        return the count per status the tab shows ({"Passed": 48, ...}) and, with `hour`, the verdict shown
        for that hour once it is picked from the list (key "hour")."""
        page = self.page
        self.open(f"/assets/{asset}?view=checks&checkDetail={check}")
        page.get_by_text("Execution history", exact=True).wait_for()  # the check's own tabs are drawn
        page.get_by_text("Partitions", exact=True).last.click()  # its tab, not the asset's
        page.get_by_text(re.compile(r"^Passed \(\d[\d,]*\)$")).wait_for()
        text = page.inner_text("body")
        shown: dict[str, Any] = {status: int(m.group(1).replace(",", "")) for status in STATUSES
                                 if (m := re.search(rf"(?m)^{status} \((\d[\d,]*)\)$", text))}
        if hour is not None:
            page.get_by_placeholder("Filter by partition").fill(hour)
            page.get_by_text(hour, exact=True).first.click()
            page.get_by_text("Target materialization").wait_for()  # the hour's verdict, tied to its data
            verdicts = re.findall(rf"(?m)^{re.escape(hour)}\n+(Passed|Failed|Missing|Skipped)$",
                                  page.inner_text("body"))
            shown["hour"] = verdicts[0] if verdicts else None
        return shown

    def plots(self, asset: str, titles: list[str], axis: str = "Partitions") -> str:
        """Open the asset's metadata plots (Overview, Metadata, Plots), as a person would, on `axis`
        ("Partitions" or "Events"), until a plot titled with each of `titles` is drawn (the UI draws none
        without data); return the page's text."""
        page = self.page
        self.open(f"/assets/{asset}?view=overview")
        page.get_by_text("Plots", exact=True).click()
        page.get_by_text(axis, exact=True).last.click()
        for title in titles:
            page.get_by_text(title, exact=True).first.wait_for()
        return page.inner_text("body")
